//! The `kuryr-cni` plugin: reads the CNI environment and stdin, answers
//! `VERSION` itself, forwards everything else to the daemon
//! ([`crate::proto`]) and prints the result, or the CNI error, on stdout.
//!
//! Exit status 0 on success, 1 on error. Errors also go to stderr as one
//! line for humans; runtimes read the JSON on stdout.
//!
//! When the daemon cannot be reached (socket missing, connection refused,
//! no reply within the timeout, connection dropped) the error is code 11
//! (try again later), or code 50 for `STATUS`.

pub mod client;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::proto::{reply_version_of, Request, Response, DEFAULT_SOCKET, SOCKET_ENV};
use crate::spec::{
    CniCommand, CniEnv, CniError, CniVersion, ErrorCode, ErrorReply, VersionResult, ENV_COMMAND,
};
use client::ClientError;

/// Largest network configuration read from stdin.
pub const MAX_STDIN_BYTES: u64 = 8 * 1024 * 1024;

/// How long the plugin waits for the daemon, per command. Each can be set
/// in seconds with `KURYR_CNI_TIMEOUT_<COMMAND>` (e.g.
/// `KURYR_CNI_TIMEOUT_ADD=180`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// ADD: creating a Neutron port and waiting for it to be ACTIVE.
    pub add: Duration,
    /// DEL.
    pub del: Duration,
    /// CHECK.
    pub check: Duration,
    /// GC: may delete many ports.
    pub gc: Duration,
    /// STATUS: runtimes poll it (containerd every 5 s).
    pub status: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            add: Duration::from_secs(120),
            del: Duration::from_secs(120),
            check: Duration::from_secs(60),
            gc: Duration::from_secs(300),
            status: Duration::from_secs(5),
        }
    }
}

impl Timeouts {
    /// The timeout of `command` (VERSION never waits for the daemon).
    pub fn for_command(&self, command: CniCommand) -> Duration {
        match command {
            CniCommand::Add => self.add,
            CniCommand::Del => self.del,
            CniCommand::Check => self.check,
            CniCommand::Gc => self.gc,
            CniCommand::Status | CniCommand::Version => self.status,
        }
    }

    fn slot(&mut self, command: CniCommand) -> Option<&mut Duration> {
        match command {
            CniCommand::Add => Some(&mut self.add),
            CniCommand::Del => Some(&mut self.del),
            CniCommand::Check => Some(&mut self.check),
            CniCommand::Gc => Some(&mut self.gc),
            CniCommand::Status => Some(&mut self.status),
            CniCommand::Version => None,
        }
    }
}

/// Where the daemon is and how long to wait for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The daemon's socket.
    pub socket: PathBuf,
    /// Per-command timeouts.
    pub timeouts: Timeouts,
}

impl Default for Settings {
    fn default() -> Self {
        Self { socket: PathBuf::from(DEFAULT_SOCKET), timeouts: Timeouts::default() }
    }
}

impl Settings {
    /// Defaults, overridden by `KURYR_CNI_SOCKET` and
    /// `KURYR_CNI_TIMEOUT_<COMMAND>` (seconds, fractions allowed, > 0).
    /// A malformed value is error 4 naming the variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, CniError> {
        let mut settings = Self::default();
        if let Some(socket) = lookup(SOCKET_ENV).filter(|s| !s.is_empty()) {
            settings.socket = PathBuf::from(socket);
        }
        for command in [
            CniCommand::Add,
            CniCommand::Del,
            CniCommand::Check,
            CniCommand::Gc,
            CniCommand::Status,
        ] {
            let var = format!("KURYR_CNI_TIMEOUT_{command}");
            let Some(text) = lookup(&var).filter(|s| !s.is_empty()) else {
                continue;
            };
            let seconds: f64 = text.trim().parse().map_err(|_| bad_timeout(&var, &text))?;
            let timeout =
                Duration::try_from_secs_f64(seconds).map_err(|_| bad_timeout(&var, &text))?;
            if timeout.is_zero() {
                return Err(bad_timeout(&var, &text));
            }
            if let Some(slot) = settings.timeouts.slot(command) {
                *slot = timeout;
            }
        }
        Ok(settings)
    }
}

fn bad_timeout(var: &str, text: &str) -> CniError {
    CniError::invalid_env(format!(
        "invalid {var} {text:?}: expected a number of seconds greater than 0"
    ))
}

/// Runs the plugin in this process: real environment, stdin, stdout and
/// stderr. Returns the exit status.
pub fn main() -> i32 {
    let lookup = |name: &str| std::env::var(name).ok();
    let mut stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    run(lookup, &mut stdin, &mut stdout, &mut stderr)
}

/// Runs one invocation with the given environment and streams; returns
/// the exit status (0 or 1).
pub fn run(
    lookup: impl Fn(&str) -> Option<String>,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> i32 {
    let (version, outcome) = invoke(&lookup, stdin);
    let written = match &outcome {
        Ok(None) => Ok(()),
        Ok(Some(result)) => write_json(stdout, result),
        Err(e) => {
            let _ = writeln!(stderr, "kuryr-cni: {e}");
            serde_json::to_value(e.to_reply_for(version))
                .map_err(|e| std::io::Error::other(e.to_string()))
                .and_then(|reply| write_json(stdout, &reply))
        }
    };
    if let Err(e) = written {
        let _ = writeln!(stderr, "kuryr-cni: cannot write to stdout: {e}");
        return 1;
    }
    i32::from(outcome.is_err())
}

fn write_json(out: &mut dyn Write, value: &Value) -> std::io::Result<()> {
    let text =
        serde_json::to_string_pretty(value).map_err(|e| std::io::Error::other(e.to_string()))?;
    out.write_all(text.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Does the work; returns the version to stamp errors with and the value
/// to print (none for commands that print nothing).
fn invoke(
    lookup: &impl Fn(&str) -> Option<String>,
    stdin: &mut dyn Read,
) -> (CniVersion, Result<Option<Value>, CniError>) {
    // Without a command nothing is read: a person at a terminal would
    // otherwise wait on stdin.
    if lookup(ENV_COMMAND).is_none_or(|c| c.is_empty()) {
        let err = CniError::invalid_env(format!(
            "required environment variable {ENV_COMMAND} is missing"
        ))
        .with_details(format!(
            "kuryr-cni {} is a CNI plugin (versions {}); runtimes run it with CNI_COMMAND set",
            env!("CARGO_PKG_VERSION"),
            CniVersion::supported_list()
        ));
        return (CniVersion::LATEST, Err(err));
    }
    let input = read_stdin(stdin);
    let version = match &input {
        Ok(text) => serde_json::from_str::<Value>(text)
            .map(|v| reply_version_of(&v))
            .unwrap_or(CniVersion::LATEST),
        Err(_) => CniVersion::LATEST,
    };
    (version, forward(lookup, input))
}

fn forward(
    lookup: &impl Fn(&str) -> Option<String>,
    input: Result<String, CniError>,
) -> Result<Option<Value>, CniError> {
    if lookup(ENV_COMMAND).as_deref() == Some(CniCommand::Version.as_str()) {
        // VERSION always answers: it ignores the other variables and a
        // missing or broken stdin, as libcni's skel does.
        let config: Option<Value> = input.ok().and_then(|t| serde_json::from_str(&t).ok());
        let given = config.as_ref().and_then(|c| c.get("cniVersion")).and_then(Value::as_str);
        return to_value(&VersionResult::kuryr(given)).map(Some);
    }
    let env = CniEnv::from_lookup(lookup)?;
    let text = input?;
    if text.trim().is_empty() {
        return Err(CniError::decode("empty network configuration on stdin"));
    }
    let config: Value = serde_json::from_str(&text)
        .map_err(|e| CniError::decode(format!("cannot decode network configuration: {e}")))?;
    let settings = Settings::from_lookup(lookup)?;
    let request = Request::new(&env, config);
    request.validate()?;
    call_daemon(&settings, &request)
}

fn read_stdin(stdin: &mut dyn Read) -> Result<String, CniError> {
    let mut text = String::new();
    stdin
        .take(MAX_STDIN_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| CniError::io(format!("cannot read network configuration from stdin: {e}")))?;
    if text.len() as u64 > MAX_STDIN_BYTES {
        return Err(CniError::io(format!(
            "network configuration on stdin is larger than {MAX_STDIN_BYTES} bytes"
        )));
    }
    Ok(text)
}

/// Sends `request` and turns the reply into what to print.
pub fn call_daemon(settings: &Settings, request: &Request) -> Result<Option<Value>, CniError> {
    let body = serde_json::to_vec(request)
        .map_err(|e| CniError::internal(format!("cannot encode request: {e}")))?;
    let timeout = settings.timeouts.for_command(request.command);
    let reply = client::post(&settings.socket, &body, timeout)
        .map_err(|e| unreachable_error(request.command, e))?;
    if reply.status == 200 {
        let response: Response = serde_json::from_slice(&reply.body)
            .map_err(|e| CniError::decode(format!("cannot decode kuryr daemon reply: {e}")))?;
        return match (request.command, response.result) {
            (CniCommand::Add, None) => {
                Err(CniError::decode("kuryr daemon answered ADD without a result"))
            }
            (CniCommand::Add, result) => Ok(result),
            // The other commands print nothing on success.
            _ => Ok(None),
        };
    }
    match serde_json::from_slice::<ErrorReply>(&reply.body) {
        Ok(error) => Err(error.into()),
        Err(_) => Err(CniError::internal(format!(
            "kuryr daemon answered HTTP {} without a CNI error: {}",
            reply.status,
            String::from_utf8_lossy(&reply.body[..reply.body.len().min(512)])
        ))),
    }
}

/// The CNI error for a daemon that could not be reached: 11 (try again
/// later), or 50 (not available) for STATUS; other failures keep I/O (5)
/// or decode (6) codes.
fn unreachable_error(command: CniCommand, e: ClientError) -> CniError {
    let code = match (&e, command) {
        (ClientError::Malformed { .. }, _) => ErrorCode::Decode,
        (_, CniCommand::Status) => ErrorCode::PluginNotAvailable,
        (
            ClientError::NotRunning { .. }
            | ClientError::Timeout { .. }
            | ClientError::Closed { .. },
            _,
        ) => ErrorCode::TryAgainLater,
        (ClientError::Connect { .. } | ClientError::Io { .. }, _) => ErrorCode::Io,
    };
    CniError::new(code, e.to_string())
}

fn to_value<T: serde::Serialize>(value: &T) -> Result<Value, CniError> {
    serde_json::to_value(value)
        .map_err(|e| CniError::internal(format!("cannot encode result: {e}")))
}

#[cfg(test)]
mod tests;
