//! Cooperative cancellation of long passes over pixels: the pass checks its
//! [`Cancel`] between bands and stops with [`PassError::Cancelled`], so a
//! client that leaves or an image that is deleted stops the work within one
//! band.

use crate::error::PassError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A flag shared by whoever may cancel a pass and the pass itself.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A flag that is not set.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Asks the pass to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether the pass was asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Whether `other` is this very flag (not merely in the same state).
    pub fn same_as(&self, other: &Cancel) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// `Err(Cancelled)` once the pass was asked to stop.
    pub fn check(&self) -> Result<(), PassError> {
        if self.is_cancelled() {
            Err(PassError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// A guard that cancels the pass when dropped, unless
    /// [`CancelOnDrop::disarm`]ed: held by whoever waits for the pass (an
    /// HTTP request whose client may leave).
    pub fn on_drop(&self) -> CancelOnDrop {
        CancelOnDrop(Some(self.clone()))
    }
}

/// Cancels its pass when dropped while armed.
#[derive(Debug)]
pub struct CancelOnDrop(Option<Cancel>);

impl CancelOnDrop {
    /// The pass finished: dropping the guard no longer cancels anything.
    pub fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(cancel) = &self.0 {
            cancel.cancel();
        }
    }
}
