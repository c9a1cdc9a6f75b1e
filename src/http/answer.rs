//! What a worker answers with: `Responses`, the policy over the
//! precomputed templates (`template.rs`): the configured response, OPTIONS,
//! 405, the rejects, maintenance, and the routes' answers through the
//! `Router`.
//!
//! What to answer is decided by `conn/` (and, among routes, by
//! `route/`, whose answers are templates too); the configured status,
//! headers and body come from `config.rs`.

use crate::http::parse::{Method, Reject, Request};
use crate::http::route::{Answered, Choice, Question, RouteSpec, Router};
use crate::http::template::{reason, Persistence, ResponseSpec, Template, DATE_LEN};

/// All templates one worker answers with.
pub struct Responses {
    /// The configured response, per [`Persistence`].
    configured: [Template; 3],
    /// 204 to OPTIONS, per [`Persistence`].
    options: [Template; 3],
    /// 405 to other methods, per [`Persistence`].
    not_allowed: [Template; 3],
    /// One per [`Reject`], always `Connection: close`.
    rejects: Vec<(Reject, Template)>,
    /// `[maintenance]`, per [`Persistence`].
    maintenance: [Template; 3],
    /// `[[route]]`s.
    router: Router,
}

/// The methods we answer, for `Allow`.
const ALLOW: &str = "Allow: GET, HEAD, OPTIONS\r\n";

/// An interim answer to `Expect: 100-continue`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The `[maintenance]` answer unless configured otherwise.
pub fn default_maintenance() -> ResponseSpec {
    ResponseSpec {
        status: 503,
        content_type: "text/plain; charset=utf-8".into(),
        headers: Vec::new(),
        body: b"Down for maintenance\n".to_vec(),
    }
}

impl Responses {
    /// The templates for `spec` alone: no routes.
    pub fn new(spec: &ResponseSpec) -> Self {
        Responses::with_routes(spec, &[], &default_maintenance())
    }

    pub fn with_routes(spec: &ResponseSpec, routes: &[RouteSpec], maint: &ResponseSpec) -> Self {
        let extra = |spec: &ResponseSpec| -> String {
            spec.headers
                .iter()
                .map(|(name, value)| format!("{name}: {value}\r\n"))
                .collect()
        };
        let text = "text/plain; charset=utf-8";
        let per = |f: &dyn Fn(Persistence) -> Template| Persistence::ALL.map(f);
        let (extra, maint_extra) = (extra(spec), extra(maint));
        Responses {
            configured: per(&|p| {
                Template::new(spec.status, &extra, p, &spec.content_type, &spec.body)
            }),
            maintenance: per(&|p| {
                Template::new(
                    maint.status,
                    &maint_extra,
                    p,
                    &maint.content_type,
                    &maint.body,
                )
            }),
            router: Router::new(routes),
            options: per(&|p| Template::options(ALLOW, p)),
            not_allowed: per(&|p| Template::new(405, ALLOW, p, text, b"Method Not Allowed\n")),
            rejects: Reject::ALL
                .iter()
                .map(|&r| {
                    let body = format!("{}\n", reason(r.status()));
                    (
                        r,
                        Template::new(r.status(), "", Persistence::Close, text, body.as_bytes()),
                    )
                })
                .collect(),
        }
    }

    /// Which route (if any) answers a request whose head is `head`; see
    /// [`Router::choose`].
    pub fn route<'h>(&self, request: &Request, head: &'h [u8]) -> (Choice, &'h [u8]) {
        self.router.choose(request, head)
    }

    /// What answered, for the access log: `maintenance` while the
    /// maintenance page answers (as [`Responses::answer`] decides), the
    /// route's name, or None for the configured response.
    pub fn route_name(&self, choice: Choice, maintenance: bool) -> Option<&str> {
        if maintenance && !self.router.bypasses_maintenance(choice) {
            return Some("maintenance");
        }
        self.router.name(choice)
    }

    /// Appends the answer to a complete request: the maintenance page while
    /// `maintenance` is on (health and status routes excepted), else its
    /// route's, else the configured response (OPTIONS and other methods as
    /// always). `q.asker` is who asks (a status route's `allow`) and what a
    /// status route reads.
    pub fn answer(&self, out: &mut Vec<u8>, q: &Question) -> Answered {
        let p = q.persistence;
        if q.maintenance && !self.router.bypasses_maintenance(q.choice) {
            let status = push(out, &self.maintenance[p as usize], q.head_only());
            return Answered::bytes(status);
        }
        let status = match (q.choice, q.request.method) {
            (Choice::Default, Method::Get) => self.configured(out, p, false),
            (Choice::Default, Method::Head) => self.configured(out, p, true),
            (Choice::Default, Method::Options) => self.options(out, p),
            (Choice::Default, Method::Other) => self.not_allowed(out, p),
            _ => return self.router.answer(out, q),
        };
        Answered::bytes(status)
    }

    /// A status route is configured: connections must know their
    /// client's address (for `allow`).
    pub fn needs_client(&self) -> bool {
        self.router.has_status()
    }

    /// Appends the configured response (its head alone for HEAD).
    pub fn configured(&self, out: &mut Vec<u8>, p: Persistence, head_only: bool) -> u16 {
        push(out, &self.configured[p as usize], head_only)
    }

    pub fn options(&self, out: &mut Vec<u8>, p: Persistence) -> u16 {
        push(out, &self.options[p as usize], false)
    }

    pub fn not_allowed(&self, out: &mut Vec<u8>, p: Persistence) -> u16 {
        push(out, &self.not_allowed[p as usize], false)
    }

    /// Appends the error answer for `r` (its head alone for HEAD).
    pub fn reject(&self, out: &mut Vec<u8>, r: Reject, head_only: bool) -> u16 {
        let t = &self
            .rejects
            .iter()
            .find(|(k, _)| *k == r)
            .expect("every Reject has a template")
            .1;
        push(out, t, head_only)
    }

    /// Writes `date` (an IMF-fixdate) into every template.
    pub fn set_date(&mut self, date: &[u8; DATE_LEN]) {
        let all = self
            .configured
            .iter_mut()
            .chain(self.options.iter_mut())
            .chain(self.not_allowed.iter_mut())
            .chain(self.maintenance.iter_mut())
            .chain(self.rejects.iter_mut().map(|(_, t)| t));
        for t in all {
            t.set_date(date);
        }
        self.router.set_date(date);
    }
}

/// Appends `t` and says its status.
fn push(out: &mut Vec<u8>, t: &Template, head_only: bool) -> u16 {
    t.push(out, head_only);
    t.status()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ResponseSpec {
        ResponseSpec {
            status: 200,
            content_type: "text/plain; charset=utf-8".into(),
            headers: vec![("X-A".into(), "b".into())],
            body: b"Hello, World!\n".to_vec(),
        }
    }

    #[test]
    fn configured_response_bytes() {
        let mut r = Responses::new(&spec());
        r.set_date(b"Sun, 06 Nov 1994 08:49:37 GMT");
        let mut out = Vec::new();
        r.configured(&mut out, Persistence::KeepAlive, false);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nServer: preforkd\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Length: 14\r\nX-A: b\r\n\r\nHello, World!\n"
        );
        let mut out = Vec::new();
        r.configured(&mut out, Persistence::Close, true);
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.ends_with("Content-Length: 14\r\nX-A: b\r\nConnection: close\r\n\r\n"),
            "{s}"
        );
    }

    #[test]
    fn rejects_close_and_carry_the_status() {
        let r = Responses::new(&spec());
        for reject in Reject::ALL {
            let mut out = Vec::new();
            r.reject(&mut out, reject, false);
            let s = String::from_utf8(out).unwrap();
            assert!(
                s.starts_with(&format!("HTTP/1.1 {} ", reject.status())),
                "{s}"
            );
            assert!(s.contains("Connection: close\r\n"), "{s}");
        }
    }
}
