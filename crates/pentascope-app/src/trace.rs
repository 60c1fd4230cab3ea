//! W3C Trace Context (`traceparent`): the trace a request belongs to,
//! taken from the client when valid, else started here, and carried into
//! the jobs the request submits (in their keyword arguments, and in the
//! headers of Celery task messages), so that one trace id ties the
//! request's log lines to those of the job, wherever it runs.
//!
//! The context of the request being served is a task-local
//! ([`TraceContext::scope`], [`current`]): the HTTP layer sets it, job
//! submission reads it, and nothing in between has to pass it along.

use std::fmt;
use std::future::Future;

/// The keyword argument (and Celery message header) that carries a job's
/// trace context, as a `traceparent` value.
pub const TRACE_KWARG: &str = "traceparent";

tokio::task_local! {
    static CURRENT: TraceContext;
}

/// A position in a trace: the trace id, the id of the span that is the
/// parent of whatever comes next, and the trace flags (bit 0: sampled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: u128,
    span_id: u64,
    flags: u8,
}

impl TraceContext {
    /// A `traceparent` value, if valid as the W3C Trace Context
    /// recommendation says: `VERSION-TRACEID-PARENTID-FLAGS` in lowercase
    /// hex, version not `ff`, neither id all zeros; version `00` is exactly
    /// that, a later version may append `-…` fields, which are ignored.
    pub fn parse(value: &str) -> Option<TraceContext> {
        let bytes = value.as_bytes();
        let (head, rest) = (bytes.get(..55)?, &bytes[55..]);
        let version = hex(&head[..2])? as u8;
        let well_formed = version != 0xff
            && head[2] == b'-'
            && head[35] == b'-'
            && head[52] == b'-'
            && match version {
                0 => rest.is_empty(),
                _ => rest.is_empty() || rest[0] == b'-',
            };
        if !well_formed {
            return None;
        }
        let context = TraceContext {
            trace_id: hex(&head[3..35])?,
            span_id: hex(&head[36..52])? as u64,
            flags: hex(&head[53..55])? as u8,
        };
        (context.trace_id != 0 && context.span_id != 0).then_some(context)
    }

    /// A new trace (not sampled: this service records no spans).
    pub fn new_root() -> TraceContext {
        TraceContext {
            trace_id: random_nonzero(),
            span_id: random_nonzero() as u64,
            flags: 0,
        }
    }

    /// The context of a new span in the same trace (its parent is this
    /// one's span).
    pub fn child(&self) -> TraceContext {
        TraceContext {
            span_id: random_nonzero() as u64,
            ..*self
        }
    }

    /// The trace id: 32 lowercase hex digits.
    pub fn trace_id(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    /// Runs `work` with this as the current context ([`current`]).
    pub async fn scope<F: Future>(self, work: F) -> F::Output {
        CURRENT.scope(self, work).await
    }
}

/// The `traceparent` value (version `00`).
impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id, self.span_id, self.flags
        )
    }
}

/// The context of the request being served, if any.
pub fn current() -> Option<TraceContext> {
    CURRENT.try_with(|c| *c).ok()
}

/// The value of lowercase hex digits (at most 32), `None` for anything else
/// (the recommendation forbids uppercase).
fn hex(digits: &[u8]) -> Option<u128> {
    digits.iter().try_fold(0u128, |value, &d| {
        let digit = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => return None,
        };
        Some(value << 4 | u128::from(digit))
    })
}

/// 128 random bits, not all zero (a v4 UUID's fixed version bits see to it).
fn random_nonzero() -> u128 {
    uuid::Uuid::new_v4().as_u128()
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_recommendations_example_round_trips() {
        let c = TraceContext::parse(VALID).unwrap();
        assert_eq!(c.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(c.to_string(), VALID);
        let child = c.child();
        assert_eq!(child.trace_id(), c.trace_id());
        assert_ne!(child.span_id, c.span_id);
        assert_eq!(child.flags, 1);
    }

    #[test]
    fn invalid_values_are_refused() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473x-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-é1",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn later_versions_may_append_fields() {
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes-next";
        assert!(TraceContext::parse(later).is_some());
        let glued = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x";
        assert_eq!(TraceContext::parse(glued), None);
    }

    #[test]
    fn new_contexts_are_valid_and_distinct() {
        let (a, b) = (TraceContext::new_root(), TraceContext::new_root());
        assert_ne!(a.trace_id(), b.trace_id());
        assert_eq!(TraceContext::parse(&a.to_string()), Some(a));
    }

    #[tokio::test]
    async fn the_current_context_is_the_scopes() {
        assert_eq!(current(), None);
        let c = TraceContext::new_root();
        assert_eq!(c.scope(async { current() }).await, Some(c));
    }
}
