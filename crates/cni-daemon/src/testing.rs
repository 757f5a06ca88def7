//! A recording [`CniHandler`] for tests of the socket server and of the
//! `kuryr-cni` plugin against it (feature `test-support`): it keeps every
//! call it is given and answers each one with a closure the test chooses.

use std::sync::Mutex;

use crate::{
    AddResult, AttachmentRequest, Call, CniError, CniHandler, GcRequest, Request, StatusRequest,
};

/// What the test answers: a call (already recorded) to the ADD result, or
/// to the error every command returns. Only ADD's result is used.
type Answer = dyn Fn(&Call) -> Result<AddResult, CniError> + Send + Sync;

/// Records the calls the server dispatches and answers them with `answer`.
pub struct RecordingHandler {
    calls: Mutex<Vec<Call>>,
    answer: Box<Answer>,
}

impl RecordingHandler {
    /// A handler that answers every call with `answer`.
    pub fn new(
        answer: impl Fn(&Call) -> Result<AddResult, CniError> + Send + Sync + 'static,
    ) -> Self {
        Self { calls: Mutex::new(Vec::new()), answer: Box::new(answer) }
    }

    /// A handler that fails every call with `err`.
    pub fn failing(err: CniError) -> Self {
        Self::new(move |_| Err(err.clone()))
    }

    /// The calls received so far, oldest first.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn record(&self, call: Call) -> Result<AddResult, CniError> {
        let answer = (self.answer)(&call);
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).push(call);
        answer
    }
}

impl CniHandler for RecordingHandler {
    async fn add(&self, req: AttachmentRequest) -> Result<AddResult, CniError> {
        self.record(Call::Add(req))
    }

    async fn del(&self, req: AttachmentRequest) -> Result<(), CniError> {
        self.record(Call::Del(req)).map(drop)
    }

    async fn check(&self, req: AttachmentRequest) -> Result<(), CniError> {
        self.record(Call::Check(req)).map(drop)
    }

    async fn gc(&self, req: GcRequest) -> Result<(), CniError> {
        self.record(Call::Gc(req)).map(drop)
    }

    async fn status(&self, req: StatusRequest) -> Result<(), CniError> {
        self.record(Call::Status(req)).map(drop)
    }
}

/// A valid STATUS request for the CNI network `name` (cniVersion 1.1.0).
pub fn status_request(name: &str) -> StatusRequest {
    let request: Request = serde_json::from_value(serde_json::json!({
        "command": "STATUS",
        "path": ["/opt/cni/bin"],
        "config": {"cniVersion": "1.1.0", "name": name, "type": "kuryr-cni"},
    }))
    .expect("a STATUS request");
    match request.validate().expect("a valid STATUS request") {
        Call::Status(s) => s,
        other => panic!("not STATUS: {other:?}"),
    }
}
