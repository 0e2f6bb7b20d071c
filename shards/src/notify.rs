//! A single-waiter wake-up flag for tasks of one executor (no atomics, no allocation per wake).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

#[derive(Default)]
pub(crate) struct Notify {
    set: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Notify {
    /// Marks the flag and wakes the waiting task, if any. Cheap when already set.
    pub(crate) fn notify(&self) {
        if !self.set.replace(true) {
            if let Some(w) = self.waker.borrow_mut().take() {
                w.wake();
            }
        }
    }

    /// Resolves once the flag is set, clearing it.
    pub(crate) fn wait(&self) -> Wait<'_> {
        Wait(self)
    }
}

pub(crate) struct Wait<'a>(&'a Notify);

impl Future for Wait<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.set.replace(false) {
            return Poll::Ready(());
        }
        *self.0.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}
