//! Pipe mode with real processes, no Node.
mod common;
use common::*;
use spawn_core::error::{FailureKind, SpawnStage};
use spawn_core::reader::StreamKind;
use spawn_core::spec::Mode;

#[test]
fn output_exit_code_and_order() {
    let r = start(&request("sh", &["-c", "printf out; printf err >&2; exit 7"], Mode::Pipes)).unwrap();
    let o = collect(&r);
    assert_eq!(o.out, b"out");
    assert_eq!(o.err, b"err");
    assert_eq!(o.status.code, Some(7));
    assert_eq!(o.status.signal, None);
    assert_eq!(o.events_after_exit, 0);
}

#[test]
fn large_burst_arrives_whole() {
    let r = start(&request("head", &["-c", "10485760", "/dev/zero"], Mode::Pipes)).unwrap();
    let o = collect(&r);
    assert_eq!(o.out.len(), 10 * 1024 * 1024);
    assert_eq!(o.status.code, Some(0));
}

#[test]
fn stdin_round_trip_and_eof() {
    let r = start(&request("cat", &[], Mode::Pipes)).unwrap();
    let data: Vec<u8> = (0..1024 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    assert!(r.handle.write(data.clone()));
    r.handle.close_stdin();
    let o = collect(&r);
    assert!(o.out == data, "cat echoed {} bytes", o.out.len());
    assert_eq!(o.status.code, Some(0));
}

#[test]
fn unread_stdin_gives_epipe_and_exit() {
    // Exits without reading, a little later than our write (`true` could be gone before it).
    let r = start(&request("sh", &["-c", "exec 0<&-; sleep 0.2"], Mode::Pipes)).unwrap();
    assert!(r.handle.write(vec![b'x'; 1 << 20]));
    let o = collect(&r);
    assert_eq!(o.stdin_errors, vec![nix::errno::Errno::EPIPE]);
    assert_eq!(o.status.code, Some(0));
}

#[test]
fn signal_death_reports_the_signal() {
    let r = start(&request("sleep", &["30"], Mode::Pipes)).unwrap();
    assert_eq!(r.handle.signal(libc::SIGTERM, true), Ok(true));
    let o = collect(&r);
    assert_eq!((o.status.code, o.status.signal), (None, Some(libc::SIGTERM)));
    assert_eq!(r.handle.signal(libc::SIGTERM, true), Ok(false), "a reaped leader is never signalled");
}

#[test]
fn grandchild_holding_the_pipe_does_not_hold_the_exit() {
    let started = std::time::Instant::now();
    let r = start(&request("sh", &["-c", "sleep 30 & echo done"], Mode::Pipes)).unwrap();
    let o = collect(&r);
    assert_eq!(o.out, b"done\n");
    assert_eq!(o.status.code, Some(0));
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}

#[test]
fn failures_are_classified_by_stage() {
    let missing = start(&request("no-such-program-xyz", &[], Mode::Pipes)).err().unwrap();
    assert_eq!((missing.failure.stage, missing.failure.kind()), (SpawnStage::Resolve, FailureKind::NotFound));
    let mut req = request("true", &[], Mode::Pipes);
    req.cwd = Some("/no/such/dir".into());
    let bad_cwd = start(&req).err().unwrap();
    assert_eq!((bad_cwd.failure.stage, bad_cwd.failure.kind()), (SpawnStage::Chdir, FailureKind::BadCwd));
    assert_eq!(bad_cwd.failure.errno_name().as_deref(), Some("ENOENT"));
    assert_eq!(bad_cwd.path.as_deref(), Some("/no/such/dir"));
    let dir = start(&request("/tmp", &[], Mode::Pipes)).err().unwrap();
    assert_eq!((dir.failure.stage, dir.failure.kind()), (SpawnStage::Execve, FailureKind::PermissionDenied));
}

#[test]
fn bulk_output_is_exact_and_in_order() {
    // seq writes in 4 KiB blocks: a grown, paced pipe must still hand every byte over in order.
    let r = start(&request("seq", &["1", "400000"], Mode::Pipes)).unwrap();
    let o = collect(&r);
    let expected: String = (1..=400_000).map(|i| format!("{i}\n")).collect();
    assert!(o.out == expected.as_bytes(), "got {} bytes, expected {}", o.out.len(), expected.len());
    assert_eq!(o.status.code, Some(0));
}

#[test]
fn a_full_pipe_is_grown_and_read_in_large_chunks() {
    let max: usize = std::fs::read_to_string("/proc/sys/fs/pipe-max-size").unwrap().trim().parse().unwrap();
    let r = start(&request("head", &["-c", "8388608", "/dev/zero"], Mode::Pipes)).unwrap();
    // Hold the first megabyte unconsumed: the reader stops, the child fills its pipe.
    let mut held = Vec::new();
    let mut total = 0;
    while total < spawn_core::handle::INFLIGHT_MAX {
        match r.events.recv_timeout(std::time::Duration::from_secs(30)).unwrap() {
            Ev::Data(_, chunk) => {
                total += chunk.len();
                held.push(chunk.len());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    for n in held {
        r.handle.credit(0, n);
    }
    let mut largest = 0;
    loop {
        match r.events.recv_timeout(std::time::Duration::from_secs(30)).unwrap() {
            Ev::Data(kind, chunk) => {
                r.handle.credit(kind.index(), chunk.len());
                largest = largest.max(chunk.len());
                total += chunk.len();
            }
            Ev::Exit(status) => {
                assert_eq!(status.code, Some(0));
                break;
            }
            _ => {}
        }
    }
    assert_eq!(total, 8 * 1024 * 1024);
    if max >= spawn_core::reader::PIPE_GROW_TO {
        assert!(largest > 64 * 1024, "largest read {largest} B: the pipe was not grown or not read whole");
    }
}

#[test]
fn a_quiet_stream_lets_its_slab_go_and_says_so_after_its_last_chunk() {
    // cat writes 128 KiB at a time: its first write fills the default pipe, which is then grown
    // and read into slabs. Then the process stays alive, printing nothing.
    let file = std::env::temp_dir().join(format!("spawn-core-slab-{}", std::process::id()));
    std::fs::write(&file, vec![7u8; 4 << 20]).unwrap();
    let path = file.to_str().unwrap();
    let r = start(&request("sh", &["-c", "cat \"$0\"; exec sleep 30", path], Mode::Pipes)).unwrap();
    let mut total = 0;
    let released = loop {
        match r.events.recv_timeout(std::time::Duration::from_secs(10)).expect("an event within 10 s") {
            Ev::Data(kind, chunk) => {
                r.handle.credit(kind.index(), chunk.len());
                total += chunk.len();
            }
            Ev::SlabReleased(kind) => break kind,
            other => panic!("unexpected {other:?}"),
        }
    };
    std::fs::remove_file(&file).unwrap();
    assert_eq!(released, StreamKind::Stdout);
    assert_eq!(total, 4 << 20, "the release comes after every byte");
    r.handle.close();
    loop {
        match r.events.recv_timeout(std::time::Duration::from_secs(10)).expect("exit within 10 s") {
            Ev::Exit(_) => break,
            Ev::SlabReleased(kind) => panic!("released twice ({kind:?})"),
            _ => {}
        }
    }
}
