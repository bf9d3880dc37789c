// The PTY reference loop (common.h, pty_transfer) as a Node-API addon, run on the Node thread
// that calls it: the same blocking loop, inside a Node process. No reader that hands bytes to
// JavaScript can beat it, so it is the limit for a Node library (bench/README.md, seventh round).
// JS: require(it).run(n) -> [bytes, nanoseconds] (bytes -1 on failure); it blocks the thread
// for the whole transfer.
#define _GNU_SOURCE
#include <node_api.h>

#include "common.h"

static napi_value run(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out, v;
  double n = 0;
  char arg[32];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_double(env, argv[0], &n) != napi_ok || !(n >= 0)) {
    napi_throw_type_error(env, NULL, "run(n): n must be a byte count");
    return NULL;
  }
  snprintf(arg, sizeof arg, "%.0f", n);
  long long t0 = now_ns();
  long long total = pty_transfer(arg);
  long long ns = now_ns() - t0;
  napi_create_array_with_length(env, 2, &out);
  napi_create_double(env, (double)total, &v);
  napi_set_element(env, out, 0, v);
  napi_create_double(env, (double)ns, &v);
  napi_set_element(env, out, 1, v);
  return out;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "run", NAPI_AUTO_LENGTH, run, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "run", fn) != napi_ok) return NULL;
  return exports;
}
