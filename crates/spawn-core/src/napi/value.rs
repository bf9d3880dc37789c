//! Safe helpers over the raw Node-API calls: read arguments, build values, throw with a code.
//!
//! Every helper checks the status it gets back and turns a failure into a `JsError`, which the
//! entry point in `mod.rs` throws. They are only called on the JS thread with a live `env`.

use std::ffi::{c_void, CStr, CString};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use super::sys::*;
use crate::slab::{Slab, SlabChunk, SLAB_SIZE};

/// Set once the runtime has refused external memory (Electron's V8 sandbox): slab chunks are
/// copied from then on.
static EXTERNAL_REFUSED: AtomicBool = AtomicBool::new(false);

/// An error to throw into JavaScript.
pub enum JsError {
    /// Wrong argument type or shape: a TypeError with code MSB_ERR_INVALID_OPTION.
    Type(String),
    /// An internal failure: an Error with code MSB_ERR_NATIVE.
    Native(String),
}

pub type JsResult<T> = Result<T, JsError>;

/// The environment of the current call.
#[derive(Clone, Copy)]
pub struct Env(pub napi_env);

fn check(status: napi_status, what: &str) -> JsResult<()> {
    if status == NAPI_OK {
        Ok(())
    } else {
        Err(JsError::Native(format!("{what} failed with napi_status {status}")))
    }
}

fn c_string(s: &str) -> CString {
    CString::new(s.replace('\0', "\\0")).unwrap_or_default()
}

impl Env {
    /// Up to `N` arguments of the call; missing ones are `undefined`.
    pub fn args<const N: usize>(self, info: napi_callback_info) -> JsResult<[napi_value; N]> {
        let mut argv = [ptr::null_mut(); N];
        let mut argc = N;
        // SAFETY: argv has room for `argc` values; the other out-parameters may be null.
        let status =
            unsafe { napi_get_cb_info(self.0, info, &mut argc, argv.as_mut_ptr(), ptr::null_mut(), ptr::null_mut()) };
        check(status, "napi_get_cb_info")?;
        Ok(argv)
    }

    pub fn type_of(self, v: napi_value) -> JsResult<napi_valuetype> {
        let mut t = 0;
        // SAFETY: `v` is a value of this env; `t` is writable.
        check(unsafe { napi_typeof(self.0, v, &mut t) }, "napi_typeof")?;
        Ok(t)
    }

    pub fn string(self, v: napi_value, what: &str) -> JsResult<String> {
        if self.type_of(v)? != NAPI_STRING {
            return Err(JsError::Type(format!("{what} must be a string")));
        }
        let mut len = 0;
        // SAFETY: a null buffer asks for the length only.
        let status = unsafe { napi_get_value_string_utf8(self.0, v, ptr::null_mut(), 0, &mut len) };
        check(status, "napi_get_value_string_utf8")?;
        let mut buf = vec![0u8; len + 1];
        let mut written = 0;
        // SAFETY: `buf` holds len + 1 bytes, room for the string and its terminator.
        let status = unsafe { napi_get_value_string_utf8(self.0, v, buf.as_mut_ptr().cast(), buf.len(), &mut written) };
        check(status, "napi_get_value_string_utf8")?;
        buf.truncate(written);
        String::from_utf8(buf).map_err(|_| JsError::Native(format!("{what} is not valid UTF-8")))
    }

    pub fn number(self, v: napi_value, what: &str) -> JsResult<f64> {
        if self.type_of(v)? != NAPI_NUMBER {
            return Err(JsError::Type(format!("{what} must be a number")));
        }
        let mut n = 0.0;
        // SAFETY: `v` is a number; `n` is writable.
        check(unsafe { napi_get_value_double(self.0, v, &mut n) }, "napi_get_value_double")?;
        Ok(n)
    }

    /// An integer number in `0..=max`.
    pub fn uint(self, v: napi_value, max: u32, what: &str) -> JsResult<u32> {
        let n = self.number(v, what)?;
        if n.fract() != 0.0 || n < 0.0 || n > max as f64 {
            return Err(JsError::Type(format!("{what} must be an integer in 0..={max}")));
        }
        Ok(n as u32)
    }

    pub fn boolean(self, v: napi_value, what: &str) -> JsResult<bool> {
        if self.type_of(v)? != NAPI_BOOLEAN {
            return Err(JsError::Type(format!("{what} must be a boolean")));
        }
        let mut b = false;
        // SAFETY: `v` is a boolean; `b` is writable.
        check(unsafe { napi_get_value_bool(self.0, v, &mut b) }, "napi_get_value_bool")?;
        Ok(b)
    }

    pub fn bigint_u64(self, v: napi_value, what: &str) -> JsResult<u64> {
        if self.type_of(v)? != NAPI_BIGINT {
            return Err(JsError::Type(format!("{what} must be a bigint")));
        }
        let mut n = 0u64;
        let mut lossless = false;
        // SAFETY: `v` is a bigint; both out-parameters are writable.
        check(unsafe { napi_get_value_bigint_uint64(self.0, v, &mut n, &mut lossless) }, "napi_get_value_bigint_uint64")?;
        if !lossless {
            return Err(JsError::Type(format!("{what} must fit in an unsigned 64-bit integer")));
        }
        Ok(n)
    }

    pub fn prop(self, obj: napi_value, name: &CStr) -> JsResult<napi_value> {
        let mut v = ptr::null_mut();
        // SAFETY: `name` is NUL-terminated; `v` is writable.
        check(unsafe { napi_get_named_property(self.0, obj, name.as_ptr(), &mut v) }, "napi_get_named_property")?;
        Ok(v)
    }

    pub fn is_nullish(self, v: napi_value) -> JsResult<bool> {
        let t = self.type_of(v)?;
        Ok(t == NAPI_UNDEFINED || t == NAPI_NULL)
    }

    pub fn object(self, v: napi_value, what: &str) -> JsResult<napi_value> {
        if self.type_of(v)? != NAPI_OBJECT {
            return Err(JsError::Type(format!("{what} must be an object")));
        }
        Ok(v)
    }

    pub fn opt_string(self, obj: napi_value, name: &CStr) -> JsResult<Option<String>> {
        let v = self.prop(obj, name)?;
        if self.is_nullish(v)? {
            return Ok(None);
        }
        self.string(v, &name.to_string_lossy()).map(Some)
    }

    /// The elements of an array, each checked by `f`.
    pub fn array<T>(self, v: napi_value, what: &str, mut f: impl FnMut(napi_value) -> JsResult<T>) -> JsResult<Vec<T>> {
        let mut is_array = false;
        // SAFETY: `is_array` is writable.
        check(unsafe { napi_is_array(self.0, v, &mut is_array) }, "napi_is_array")?;
        if !is_array {
            return Err(JsError::Type(format!("{what} must be an array")));
        }
        let mut len = 0;
        // SAFETY: `v` is an array; `len` is writable.
        check(unsafe { napi_get_array_length(self.0, v, &mut len) }, "napi_get_array_length")?;
        let mut out = Vec::with_capacity(len as usize);
        for i in 0..len {
            let mut e = ptr::null_mut();
            // SAFETY: `e` is writable.
            check(unsafe { napi_get_element(self.0, v, i, &mut e) }, "napi_get_element")?;
            out.push(f(e)?);
        }
        Ok(out)
    }

    /// The bytes of a Buffer or Uint8Array, valid for the current call.
    pub fn buffer<'a>(self, v: napi_value, what: &str) -> JsResult<&'a [u8]> {
        let mut is_buffer = false;
        // SAFETY: `is_buffer` is writable.
        check(unsafe { napi_is_buffer(self.0, v, &mut is_buffer) }, "napi_is_buffer")?;
        if !is_buffer {
            return Err(JsError::Type(format!("{what} must be a Buffer")));
        }
        let mut data = ptr::null_mut();
        let mut len = 0;
        // SAFETY: `v` is a buffer; both out-parameters are writable.
        check(unsafe { napi_get_buffer_info(self.0, v, &mut data, &mut len) }, "napi_get_buffer_info")?;
        if len == 0 {
            return Ok(&[]);
        }
        // SAFETY: Node guarantees `data` points at `len` bytes that live at least for this call.
        Ok(unsafe { std::slice::from_raw_parts(data as *const u8, len) })
    }

    /// The pointer stored in an External created by `external`.
    pub fn external<T>(self, v: napi_value, what: &str) -> JsResult<&'static T> {
        if self.type_of(v)? != NAPI_EXTERNAL {
            return Err(JsError::Type(format!("{what} must be a native handle")));
        }
        let mut data = ptr::null_mut();
        // SAFETY: `data` is writable.
        check(unsafe { napi_get_value_external(self.0, v, &mut data) }, "napi_get_value_external")?;
        // SAFETY: every External this addon creates holds a Box<T> of the type its functions
        // expect, freed only by its finalizer, which cannot run while the value is in use.
        Ok(unsafe { &*(data as *const T) })
    }

    /// Wraps `value` in an External whose finalizer drops it.
    pub fn create_external<T: 'static>(self, value: T) -> JsResult<napi_value> {
        unsafe extern "C" fn finalize<T>(_env: napi_env, data: *mut c_void, _hint: *mut c_void) {
            let _ = std::panic::catch_unwind(|| {
                // SAFETY: `data` is the Box<T> leaked by create_external, finalized once.
                drop(unsafe { Box::from_raw(data as *mut T) });
            });
        }
        let raw = Box::into_raw(Box::new(value));
        let mut v = ptr::null_mut();
        // SAFETY: `raw` stays valid until the finalizer frees it.
        let status = unsafe { napi_create_external(self.0, raw.cast(), finalize::<T>, ptr::null_mut(), &mut v) };
        if status != NAPI_OK {
            // SAFETY: Node did not take ownership; reclaim the box.
            drop(unsafe { Box::from_raw(raw) });
        }
        check(status, "napi_create_external")?;
        Ok(v)
    }

    pub fn create_string(self, s: &str) -> JsResult<napi_value> {
        let mut v = ptr::null_mut();
        // SAFETY: `s` is valid UTF-8 of the given length.
        check(unsafe { napi_create_string_utf8(self.0, s.as_ptr().cast(), s.len(), &mut v) }, "napi_create_string_utf8")?;
        Ok(v)
    }

    pub fn create_i32(self, n: i32) -> JsResult<napi_value> {
        let mut v = ptr::null_mut();
        // SAFETY: `v` is writable.
        check(unsafe { napi_create_int32(self.0, n, &mut v) }, "napi_create_int32")?;
        Ok(v)
    }

    pub fn create_f64(self, n: f64) -> JsResult<napi_value> {
        let mut v = ptr::null_mut();
        // SAFETY: `v` is writable.
        check(unsafe { napi_create_double(self.0, n, &mut v) }, "napi_create_double")?;
        Ok(v)
    }

    pub fn create_bool(self, b: bool) -> JsResult<napi_value> {
        let mut v = ptr::null_mut();
        // SAFETY: `v` is writable.
        check(unsafe { napi_get_boolean(self.0, b, &mut v) }, "napi_get_boolean")?;
        Ok(v)
    }

    pub fn null(self) -> JsResult<napi_value> {
        let mut v = ptr::null_mut();
        // SAFETY: `v` is writable.
        check(unsafe { napi_get_null(self.0, &mut v) }, "napi_get_null")?;
        Ok(v)
    }

    pub fn undefined(self) -> JsResult<napi_value> {
        let mut v = ptr::null_mut();
        // SAFETY: `v` is writable.
        check(unsafe { napi_get_undefined(self.0, &mut v) }, "napi_get_undefined")?;
        Ok(v)
    }

    pub fn create_object(self) -> JsResult<napi_value> {
        let mut v = ptr::null_mut();
        // SAFETY: `v` is writable.
        check(unsafe { napi_create_object(self.0, &mut v) }, "napi_create_object")?;
        Ok(v)
    }

    pub fn set(self, obj: napi_value, name: &CStr, value: napi_value) -> JsResult<()> {
        // SAFETY: `name` is NUL-terminated; both values belong to this env.
        check(unsafe { napi_set_named_property(self.0, obj, name.as_ptr(), value) }, "napi_set_named_property")
    }

    pub fn buffer_copy(self, bytes: &[u8]) -> JsResult<napi_value> {
        let mut v = ptr::null_mut();
        let mut data = ptr::null_mut();
        // SAFETY: `bytes` is readable for its length; Node copies it.
        let status = unsafe { napi_create_buffer_copy(self.0, bytes.len(), bytes.as_ptr().cast(), &mut data, &mut v) };
        check(status, "napi_create_buffer_copy")?;
        Ok(v)
    }

    /// A Buffer over `bytes` without copying: the Vec is freed when the Buffer is collected.
    /// Where the runtime refuses external buffers, the bytes are copied instead.
    pub fn buffer_from_vec(self, bytes: Vec<u8>) -> JsResult<napi_value> {
        unsafe extern "C" fn finalize(_env: napi_env, _data: *mut c_void, hint: *mut c_void) {
            let _ = std::panic::catch_unwind(|| {
                // SAFETY: `hint` is the Box<Vec<u8>> leaked by buffer_from_vec, finalized once.
                drop(unsafe { Box::from_raw(hint as *mut Vec<u8>) });
            });
        }
        if bytes.is_empty() {
            return self.buffer_copy(&[]);
        }
        let mut boxed = Box::new(bytes);
        let (data, len) = (boxed.as_mut_ptr(), boxed.len());
        let raw = Box::into_raw(boxed);
        let mut v = ptr::null_mut();
        // SAFETY: `data` points into the Vec owned by `raw`, which stays alive (and unmoved: the
        // Vec's heap block does not move when the Box is leaked) until the finalizer frees it.
        let status = unsafe { napi_create_external_buffer(self.0, len, data.cast(), finalize, raw.cast(), &mut v) };
        if status == NAPI_OK {
            return Ok(v);
        }
        // SAFETY: Node did not take ownership; reclaim the box.
        let bytes = unsafe { Box::from_raw(raw) };
        if status == NAPI_NO_EXTERNAL_BUFFERS_ALLOWED {
            return self.buffer_copy(&bytes);
        }
        check(status, "napi_create_external_buffer")?;
        Ok(v)
    }

    /// A slab chunk as the JS side takes it: (the slab's ArrayBuffer, or undefined when the JS
    /// side already holds it for this stream; offset; length). `held` is the address of the slab
    /// the JS side holds. Where the runtime refuses external memory, or the ArrayBuffer cannot be
    /// made, the chunk is copied into a Buffer of its own, returned with no offset and length.
    pub fn slab_chunk(self, chunk: SlabChunk, held: &AtomicUsize) -> JsResult<(napi_value, Option<(napi_value, napi_value)>)> {
        unsafe extern "C" fn finalize(_env: napi_env, _data: *mut c_void, hint: *mut c_void) {
            let _ = std::panic::catch_unwind(|| {
                // SAFETY: `hint` is the Box<Arc<Slab>> leaked by slab_chunk, finalized once.
                drop(unsafe { Box::from_raw(hint as *mut Arc<Slab>) });
            });
        }
        // Both fit in i32: off + len ≤ SLAB_SIZE.
        let place = Some((self.create_i32(chunk.off as i32)?, self.create_i32(chunk.len as i32)?));
        let addr = chunk.slab.as_ptr() as usize;
        if held.load(Ordering::Relaxed) == addr {
            return Ok((self.undefined()?, place));
        }
        if !EXTERNAL_REFUSED.load(Ordering::Relaxed) {
            let raw = Box::into_raw(Box::new(Arc::clone(&chunk.slab)));
            let mut v = ptr::null_mut();
            // SAFETY: the slab's memory stays allocated while the leaked Arc lives, which the
            // finalizer drops when the ArrayBuffer is collected.
            let status = unsafe { napi_create_external_arraybuffer(self.0, addr as *mut c_void, SLAB_SIZE, finalize, raw.cast(), &mut v) };
            if status == NAPI_OK {
                held.store(addr, Ordering::Relaxed);
                return Ok((v, place));
            }
            // SAFETY: Node did not take ownership; reclaim the box.
            drop(unsafe { Box::from_raw(raw) });
            if status == NAPI_NO_EXTERNAL_BUFFERS_ALLOWED {
                EXTERNAL_REFUSED.store(true, Ordering::Relaxed);
            }
        }
        // The JS side keeps whatever slab it had; chunks of this one go by copy.
        Ok((self.buffer_copy(chunk.bytes())?, None))
    }

    pub fn function(self, name: &CStr, cb: napi_callback) -> JsResult<napi_value> {
        let mut v = ptr::null_mut();
        // SAFETY: `name` is NUL-terminated; `cb` is a valid callback for the env's lifetime.
        let status = unsafe { napi_create_function(self.0, name.as_ptr(), NAPI_AUTO_LENGTH, cb, ptr::null_mut(), &mut v) };
        check(status, "napi_create_function")?;
        Ok(v)
    }

    /// Throws `err` unless an exception is already pending.
    pub fn throw(self, err: JsError) {
        let mut pending = false;
        // SAFETY: `pending` is writable.
        unsafe { napi_is_exception_pending(self.0, &mut pending) };
        if pending {
            return;
        }
        let code = c"MSB_ERR_INVALID_OPTION";
        // SAFETY: code and message are NUL-terminated strings that live through the call.
        unsafe {
            match err {
                JsError::Type(msg) => napi_throw_type_error(self.0, code.as_ptr(), c_string(&msg).as_ptr()),
                JsError::Native(msg) => napi_throw_error(self.0, c"MSB_ERR_NATIVE".as_ptr(), c_string(&msg).as_ptr()),
            };
        }
    }
}
