//! The operator's terminal on Windows: the console's modes, its window size, and size changes
//! found by polling (a console has no SIGWINCH).

use std::io;
use std::thread;
use std::time::Duration;

use windows_sys::Win32::System::Console::{
    GetConsoleMode, GetConsoleScreenBufferInfo, GetStdHandle, SetConsoleMode, CONSOLE_MODE,
    CONSOLE_SCREEN_BUFFER_INFO, DISABLE_NEWLINE_AUTO_RETURN, ENABLE_ECHO_INPUT, ENABLE_LINE_INPUT,
    ENABLE_PROCESSED_INPUT, ENABLE_VIRTUAL_TERMINAL_INPUT, ENABLE_VIRTUAL_TERMINAL_PROCESSING,
    STD_HANDLE, STD_INPUT_HANDLE, STD_OUTPUT_HANDLE,
};

/// How often [`wait_winch`] looks at the console's size.
const SIZE_POLL: Duration = Duration::from_millis(250);

fn console_mode(which: STD_HANDLE) -> Option<CONSOLE_MODE> {
    let mut mode = 0;
    // SAFETY: GetStdHandle returns this process's handle (or null/invalid, which
    // GetConsoleMode refuses); `mode` outlives the call.
    let ok = unsafe { GetConsoleMode(GetStdHandle(which), &mut mode) };
    (ok != 0).then_some(mode)
}

fn set_console_mode(which: STD_HANDLE, mode: CONSOLE_MODE) -> io::Result<()> {
    // SAFETY: as in `console_mode`; the mode is a plain value.
    if unsafe { SetConsoleMode(GetStdHandle(which), mode) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Restores the console's modes when dropped.
#[derive(Debug)]
pub struct RawMode {
    input: CONSOLE_MODE,
    output: Option<CONSOLE_MODE>,
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = set_console_mode(STD_INPUT_HANDLE, self.input);
        if let Some(output) = self.output {
            let _ = set_console_mode(STD_OUTPUT_HANDLE, output);
        }
    }
}

/// Whether our stdin is a console.
pub fn stdin_is_tty() -> bool {
    console_mode(STD_INPUT_HANDLE).is_some()
}

/// Puts the console in raw mode until the guard drops: keys (as VT sequences) go to the
/// guest unechoed and unedited, and the guest's VT output is interpreted.
pub fn raw_stdin() -> io::Result<RawMode> {
    let input = console_mode(STD_INPUT_HANDLE)
        .ok_or_else(|| io::Error::new(io::ErrorKind::Unsupported, "stdin is not a console"))?;
    let raw_input = (input & !(ENABLE_LINE_INPUT | ENABLE_ECHO_INPUT | ENABLE_PROCESSED_INPUT))
        | ENABLE_VIRTUAL_TERMINAL_INPUT;
    set_console_mode(STD_INPUT_HANDLE, raw_input)?;
    let output = console_mode(STD_OUTPUT_HANDLE);
    if let Some(mode) = output {
        // Older consoles refuse VT processing: the guest's output is then shown as it comes.
        let _ = set_console_mode(
            STD_OUTPUT_HANDLE,
            mode | ENABLE_VIRTUAL_TERMINAL_PROCESSING | DISABLE_NEWLINE_AUTO_RETURN,
        );
    }
    Ok(RawMode { input, output })
}

/// The console window's size as (rows, columns), if stdout is a console.
pub fn stdin_size() -> Option<(u16, u16)> {
    // SAFETY: the struct is plain old data; all-zero is valid and the call fills it.
    let mut info: CONSOLE_SCREEN_BUFFER_INFO = unsafe { std::mem::zeroed() };
    // SAFETY: as in `console_mode`; `info` outlives the call.
    if unsafe { GetConsoleScreenBufferInfo(GetStdHandle(STD_OUTPUT_HANDLE), &mut info) } == 0 {
        return None;
    }
    let w = info.srWindow;
    let rows = u16::try_from(i32::from(w.Bottom) - i32::from(w.Top) + 1).ok()?;
    let cols = u16::try_from(i32::from(w.Right) - i32::from(w.Left) + 1).ok()?;
    (rows > 0 && cols > 0).then_some((rows, cols))
}

/// Nothing to do: Windows has no SIGWINCH to block.
pub fn block_winch() -> io::Result<()> {
    Ok(())
}

/// Waits until the console's size changes (polled every 250 ms).
pub fn wait_winch() -> io::Result<()> {
    let start = stdin_size();
    loop {
        thread::sleep(SIZE_POLL);
        if stdin_size() != start {
            return Ok(());
        }
    }
}

/// Closes this handle to a stdin stream: a pipe has no half-close, and the stream carries
/// only stdin, so once every handle to it is closed the guest reads EOF.
pub fn close_write(stream: lcow_protocol::hybrid::HostStream) {
    drop(stream);
}
