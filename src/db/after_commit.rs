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

/// Where a transaction's lines begin, to drop them on rollback.
pub(super) struct Opened(usize);

pub(super) fn open() -> Opened {
    PENDING.with(|p| {
        let mut p = p.borrow_mut();
        p.depth += 1;
        Opened(p.lines.len())
    })
}

pub(super) fn close(opened: Opened, committed: bool) {
    let ready = PENDING.with(|p| {
        let mut p = p.borrow_mut();
        p.depth = p.depth.saturating_sub(1);
        if !committed {
            p.lines.truncate(opened.0);
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
        close(inner, false);
        assert_eq!(held(), ["a"]);
        let inner = open();
        log("c".into());
        close(inner, true);
        assert_eq!(held(), ["a", "c"]);
        close(outer, true);
        assert!(held().is_empty());
    }
}
