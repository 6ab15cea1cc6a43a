//! Log lines of security events, written only once the transaction that stored them commits:
//! a rolled-back write never leaves a line for an event that did not happen.
//!
//! Kept per thread, as a transaction is: [`super::write_transaction`] opens a level, and closing
//! the outermost one prints what it holds (commit) or drops it (rollback). An event stored
//! outside a transaction is committed by its own statement and printed at once.

use std::cell::RefCell;

#[derive(Default)]
struct Pending {
    depth: usize,
    lines: Vec<String>,
}

thread_local! {
    static PENDING: RefCell<Pending> = RefCell::new(Pending::default());
}

/// An open transaction's place in the held lines. Closed by [`Opened::close`]; dropped without
/// closing (a panic inside the transaction, which the writer thread survives), it counts as a
/// rollback, so the thread's nesting never stays open.
pub(super) struct Opened {
    mark: usize,
    closed: bool,
}

pub(super) fn open() -> Opened {
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        p.depth += 1;
        Opened {
            mark: p.lines.len(),
            closed: false,
        }
    })
}

impl Opened {
    pub(super) fn close(mut self, committed: bool) {
        self.closed = true;
        finish(self.mark, committed);
    }
}

impl Drop for Opened {
    fn drop(&mut self) {
        if !self.closed {
            finish(self.mark, false);
        }
    }
}

fn finish(mark: usize, committed: bool) {
    let ready = PENDING.with(|p| {
        let mut p = p.borrow_mut();
        p.depth = p.depth.saturating_sub(1);
        if !committed {
            p.lines.truncate(mark);
        }
        if p.depth == 0 {
            std::mem::take(&mut p.lines)
        } else {
            Vec::new()
        }
    });
    print(ready);
}

/// Logs `line` once what the current transaction wrote is committed.
pub fn log(line: String) {
    let now = PENDING.with(|p| {
        let mut p = p.borrow_mut();
        if p.depth == 0 {
            Some(line)
        } else {
            p.lines.push(line);
            None
        }
    });
    print(now.into_iter().collect());
}

fn print(lines: Vec<String>) {
    for line in lines {
        println!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held() -> Vec<String> {
        PENDING.with(|p| p.borrow().lines.clone())
    }

    #[test]
    fn lines_wait_for_the_outermost_commit_and_a_rollback_drops_its_own() {
        let outer = open();
        log("a".into());
        let inner = open();
        log("b".into());
        inner.close(false);
        assert_eq!(held(), ["a"]);
        let inner = open();
        log("c".into());
        inner.close(true);
        assert_eq!(held(), ["a", "c"]);
        outer.close(true);
        assert!(held().is_empty());
    }

    #[test]
    fn a_transaction_that_panicked_is_a_rollback_and_closes_its_level() {
        let outcome = std::panic::catch_unwind(|| {
            let _open = open();
            log("never".into());
            panic!("a write panicked");
        });
        assert!(outcome.is_err());
        assert!(held().is_empty());
        // The next line is not held behind a level that never closed.
        log("printed at once".into());
        assert!(held().is_empty());
    }
}
