//! Where a scenario's progress lines go: straight to stdout, or, for a scenario running beside
//! others (`e2e run --jobs N`), into its own buffer that is printed in one block when it ends, so
//! no other scenario's lines come between its steps in a CI log.

use std::cell::RefCell;
use std::future::Future;

tokio::task_local! {
    static BUFFER: RefCell<Vec<String>>;
}

/// A progress line, `format!`-style: through [`line`].
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::output::line(format!($($arg)*))
    };
}

/// One progress line: into the buffer of the [`grouped`] run this is part of, else to stdout.
pub fn line(line: impl Into<String>) {
    let mut line = Some(line.into());
    let _ = BUFFER.try_with(|b| b.borrow_mut().extend(line.take()));
    if let Some(l) = line {
        println!("{l}");
    }
}

/// Whether [`line`] buffers here (then child processes' progress belongs in the buffer too).
pub fn buffering() -> bool {
    BUFFER.try_with(|_| ()).is_ok()
}

/// Runs `f` with every [`line`] inside it buffered; its output and the lines, in order.
pub async fn grouped<F: Future>(f: F) -> (F::Output, Vec<String>) {
    BUFFER
        .scope(RefCell::new(Vec::new()), async {
            let out = f.await;
            (out, BUFFER.with(RefCell::take))
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_said_in_a_group_are_kept_in_order_and_not_printed() {
        assert!(!buffering());
        let (n, lines) = grouped(async {
            line("[a] one");
            tokio::task::yield_now().await;
            crate::say!("[a] {}", "two");
            assert!(buffering());
            7
        })
        .await;
        assert_eq!(n, 7);
        assert_eq!(lines, ["[a] one", "[a] two"]);
        assert!(!buffering());
    }
}
