//! Containing panics from third-party decoders to the one file that caused them.
//!
//! Image and metadata parsers are fed untrusted files; a bug in one must cost one file, not the
//! whole scan. [`contain`] runs a closure, turns a panic into an error message, and keeps the
//! default hook from printing a backtrace for panics it contains. A C library (libheif and its
//! codecs) can fail worse than a panic — a segfault, an abort, a loop — so [`in_child`] runs such
//! a decoder in a forked child process and turns its death or a timeout into an error too.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    static CONTAINING: Cell<bool> = const { Cell::new(false) };
    static LAST_MESSAGE: RefCell<Option<String>> = const { RefCell::new(None) };
}

static INSTALL: Once = Once::new();

fn install_hook() {
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CONTAINING.with(|c| c.get()) {
                let msg = match info.payload().downcast_ref::<&str>() {
                    Some(s) => s.to_string(),
                    None => match info.payload().downcast_ref::<String>() {
                        Some(s) => s.clone(),
                        None => "unknown panic".to_string(),
                    },
                };
                let at = info
                    .location()
                    .map(|l| format!(" at {}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                LAST_MESSAGE.with(|m| *m.borrow_mut() = Some(format!("{msg}{at}")));
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `f`; a panic inside it becomes `Err(message)`.
pub fn contain<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_hook();
    let was = CONTAINING.with(|c| c.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    CONTAINING.with(|c| c.set(was));
    result.map_err(|_| {
        LAST_MESSAGE
            .with(|m| m.borrow_mut().take())
            .unwrap_or_else(|| "unknown panic".to_string())
    })
}

/// Runs `f` in a forked child process and returns the bytes it produced, so that a crash, an
/// abort or a hang inside a C decoder costs this one call, not the app. The child shares the
/// parent's memory copy-on-write (no serialisation of the input); its answer comes back through
/// a pipe. A child still running after `timeout` is killed.
///
/// The child runs only `f` and then `_exit`s: no destructors, no atexit handlers, no flushing of
/// the parent's buffers. `f` must not take locks another parent thread may hold at the fork
/// (the allocator is safe: glibc resets its locks in the child); a decoder whose library the
/// parent never calls itself meets that, which is why libheif is only ever called in children.
#[cfg(unix)]
pub fn in_child(
    timeout: std::time::Duration,
    f: impl FnOnce() -> Result<Vec<u8>, String>,
) -> Result<Vec<u8>, String> {
    use std::fs::File;
    use std::io::{Read, Write};
    use std::os::fd::FromRawFd;

    // One fork at a time while a pipe's write end is open here, so that no other decoder child
    // inherits it (it would hold the pipe open, and this parent would wait for it too).
    static FORKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let forking = FORKING.lock().unwrap_or_else(|e| e.into_inner());
    let mut fds = [0i32; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!(
            "cannot create a pipe: {}",
            std::io::Error::last_os_error()
        ));
    }
    let (read_fd, write_fd) = (fds[0], fds[1]);
    // SAFETY: fork has no preconditions; the child below only runs `f`, writes and exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        let e = std::io::Error::last_os_error();
        // SAFETY: both descriptors are ours and open.
        unsafe {
            libc::close(read_fd);
            libc::close(write_fd);
        }
        return Err(format!("cannot start a decoder process: {e}"));
    }
    if pid == 0 {
        // The child. Its answer: one status byte (0 ok, 1 error) and the payload.
        // SAFETY: the read end is ours; the write end is owned by `out` from here on.
        unsafe { libc::close(read_fd) };
        let mut out = unsafe { File::from_raw_fd(write_fd) };
        let (status, payload) = match contain(f) {
            Ok(Ok(bytes)) => (0u8, bytes),
            Ok(Err(message)) => (1, message.into_bytes()),
            Err(panic) => (1, format!("decoder crashed: {panic}").into_bytes()),
        };
        let code = match out
            .write_all(&[status])
            .and_then(|_| out.write_all(&payload))
        {
            Ok(()) => 0,
            Err(_) => 3,
        };
        // SAFETY: ends the child at once, as fork's child must.
        unsafe { libc::_exit(code) }
    }
    // The parent.
    // SAFETY: the write end belongs to the child now; the read end is owned by `input`.
    unsafe { libc::close(write_fd) };
    drop(forking);
    let mut input = unsafe { File::from_raw_fd(read_fd) };
    let deadline = std::time::Instant::now() + timeout;
    let mut answer = Vec::new();
    let mut timed_out = false;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            timed_out = true;
            break;
        }
        let mut poll = libc::pollfd {
            fd: read_fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut poll, 1, ms) };
        if ready < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            timed_out = true;
            break;
        }
        if ready == 0 {
            continue;
        }
        match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    drop(input);
    if timed_out {
        // SAFETY: `pid` is our child, not yet reaped.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let mut wait_status = 0;
    // SAFETY: reaps our own child.
    while unsafe { libc::waitpid(pid, &mut wait_status, 0) } < 0 {
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            break;
        }
    }
    if timed_out {
        return Err(format!(
            "decoder gave no answer within {} s and was stopped",
            timeout.as_secs()
        ));
    }
    if libc::WIFSIGNALED(wait_status) {
        let signal = libc::WTERMSIG(wait_status);
        return Err(format!("decoder crashed ({})", signal_name(signal)));
    }
    match answer.split_first() {
        Some((0, payload)) if libc::WEXITSTATUS(wait_status) == 0 => Ok(payload.to_vec()),
        Some((1, message)) => Err(String::from_utf8_lossy(message).into_owned()),
        _ => Err(format!(
            "decoder process ended (exit status {}) without an answer",
            libc::WEXITSTATUS(wait_status)
        )),
    }
}

/// Elsewhere there is no fork: the decoder runs here, with panics contained.
#[cfg(not(unix))]
pub fn in_child(
    _timeout: std::time::Duration,
    f: impl FnOnce() -> Result<Vec<u8>, String>,
) -> Result<Vec<u8>, String> {
    contain(f).unwrap_or_else(|panic| Err(format!("decoder crashed: {panic}")))
}

#[cfg(unix)]
fn signal_name(signal: i32) -> String {
    let name = match signal {
        libc::SIGSEGV => "SIGSEGV, a memory fault",
        libc::SIGBUS => "SIGBUS, a memory fault",
        libc::SIGABRT => "SIGABRT, an abort",
        libc::SIGFPE => "SIGFPE, an arithmetic fault",
        libc::SIGILL => "SIGILL, an illegal instruction",
        libc::SIGKILL => "SIGKILL, killed",
        _ => return format!("signal {signal}"),
    };
    format!("signal {signal}: {name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_becomes_error() {
        let r: Result<(), String> = contain(|| panic!("decoder bug {}", 42));
        let msg = r.unwrap_err();
        assert!(msg.starts_with("decoder bug 42"), "{msg}");
        assert_eq!(contain(|| 7), Ok(7));
    }

    #[cfg(unix)]
    #[test]
    fn a_child_answers_or_its_crash_abort_or_hang_becomes_an_error() {
        use std::time::{Duration, Instant};
        let long = Duration::from_secs(20);
        // A large answer (bigger than a pipe's buffer) arrives whole.
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let expected = big.clone();
        assert_eq!(in_child(long, move || Ok(big)), Ok(expected));
        assert_eq!(
            in_child(long, || Err("bad box".into())),
            Err("bad box".into())
        );
        let e = in_child(long, || panic!("decoder bug")).unwrap_err();
        assert!(e.starts_with("decoder crashed: decoder bug"), "{e}");
        // A segfault (a write to an unmapped page, as a C decoder's bug makes) and an abort
        // kill only the child.
        let e = in_child(long, || {
            unsafe { std::ptr::write_volatile(16 as *mut u32, 1) };
            Ok(vec![])
        })
        .unwrap_err();
        assert!(e.contains("SIGSEGV"), "{e}");
        let e = in_child(long, || unsafe { libc::abort() }).unwrap_err();
        assert!(e.contains("SIGABRT"), "{e}");
        // A hang is stopped at the timeout.
        let start = Instant::now();
        let e = in_child(Duration::from_millis(300), || loop {
            std::thread::sleep(Duration::from_secs(1));
        })
        .unwrap_err();
        assert!(e.contains("no answer within"), "{e}");
        assert!(start.elapsed() < Duration::from_secs(10));
        // This process is still here and can go on.
        assert_eq!(in_child(long, || Ok(vec![7])), Ok(vec![7]));
    }
}
