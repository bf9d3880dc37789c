//! PTY mode with real processes, no Node.
mod common;
use common::*;
use spawn_core::spec::Mode;

#[test]
fn tail_is_never_lost() {
    for _ in 0..20 {
        let r = start(&request("head", &["-c", "65536", "/dev/zero"], Mode::Pty { rows: 24, cols: 80 })).unwrap();
        let o = collect(&r);
        assert_eq!(o.out.len(), 65536);
        assert_eq!(o.status.code, Some(0));
        assert_eq!(o.events_after_exit, 0);
    }
}

#[test]
fn initial_size_and_resize() {
    let r = start(&request("sh", &["-c", "stty size; read x; stty size"], Mode::Pty { rows: 31, cols: 97 })).unwrap();
    let mut first = Vec::new();
    while !first.ends_with(b"\r\n") {
        match r.events.recv_timeout(std::time::Duration::from_secs(10)).unwrap() {
            Ev::Data(k, c) => { r.handle.credit(k.index(), c.len()); first.extend(c) }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(first, b"31 97\r\n");
    assert_eq!(r.handle.resize(50, 132), Ok(true));
    r.handle.write(b"go\n".to_vec());
    let o = collect(&r);
    assert_eq!(String::from_utf8_lossy(&o.out), "go\r\n50 132\r\n");
    assert_eq!(o.status.code, Some(0));
}

#[test]
fn veof_ends_cat() {
    let r = start(&request("cat", &[], Mode::Pty { rows: 24, cols: 80 })).unwrap();
    r.handle.write(b"abc".to_vec());
    r.handle.close_stdin();
    let o = collect(&r);
    assert_eq!(o.status.code, Some(0));
    assert_eq!(String::from_utf8_lossy(&o.out), "abcabc");
}
