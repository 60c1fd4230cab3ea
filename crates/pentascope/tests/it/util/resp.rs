//! HTTP responses and what tests read from them.

use serde_json::Value;

use super::npy;
use super::png::PngHeader;

/// A fully read HTTP response.
pub struct Resp {
    /// Method and path, for messages.
    pub what: String,
    /// Status code.
    pub status: u16,
    /// The `Content-Type` header ("" when absent).
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
    /// Every header.
    pub headers: reqwest::header::HeaderMap,
}

impl Resp {
    /// A header's value as text ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The body, shortened for messages.
    pub fn snippet(&self) -> String {
        let text = String::from_utf8_lossy(&self.body[..self.body.len().min(400)]);
        if self.body.len() > 400 {
            format!("{text}... ({} bytes)", self.body.len())
        } else {
            text.into_owned()
        }
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Result<Value, String> {
        serde_json::from_slice(&self.body).map_err(|e| {
            format!(
                "{}: status {}, body is not JSON ({e}): {}",
                self.what,
                self.status,
                self.snippet()
            )
        })
    }

    /// The JSON body of a 200 response.
    pub fn ok_json(&self) -> Result<Value, String> {
        ensure!(
            self.status == 200,
            "{}: expected 200, got {}: {}",
            self.what,
            self.status,
            self.snippet()
        );
        self.json()
    }

    /// Checks that this is an error response with a status in `allowed` and
    /// a JSON body `{"error": "<non-empty message>"}`; returns the message.
    pub fn error(&self, allowed: &[u16]) -> Result<String, String> {
        ensure!(
            allowed.contains(&self.status),
            "{}: expected status {allowed:?}, got {}: {}",
            self.what,
            self.status,
            self.snippet()
        );
        self.error_message()
    }

    /// Like [`Resp::error`] with any 4xx status.
    pub fn client_error(&self) -> Result<String, String> {
        ensure!(
            (400..500).contains(&self.status),
            "{}: expected a 4xx status, got {}: {}",
            self.what,
            self.status,
            self.snippet()
        );
        self.error_message()
    }

    fn error_message(&self) -> Result<String, String> {
        let json = self.json()?;
        match json.get("error").and_then(Value::as_str) {
            Some(msg) if !msg.trim().is_empty() => Ok(msg.to_string()),
            _ => Err(format!(
                "{}: status {} but the body has no non-empty `error` string: {}",
                self.what,
                self.status,
                self.snippet()
            )),
        }
    }

    /// The body of a 200 `application/octet-stream` response parsed as `.npy`.
    pub fn npy(&self) -> Result<npy::Npy, String> {
        ensure!(
            self.status == 200,
            "{}: expected 200, got {}: {}",
            self.what,
            self.status,
            self.snippet()
        );
        ensure!(
            self.content_type.starts_with("application/octet-stream"),
            "{}: content-type {:?}, expected application/octet-stream",
            self.what,
            self.content_type
        );
        npy::Npy::parse(&self.body).map_err(|e| format!("{}: {e}", self.what))
    }

    /// Checks a 200 `image/png` response and returns its IHDR.
    pub fn png_header(&self) -> Result<PngHeader, String> {
        ensure!(
            self.status == 200,
            "{}: expected 200, got {}: {}",
            self.what,
            self.status,
            self.snippet()
        );
        ensure!(
            self.content_type.starts_with("image/png"),
            "{}: content-type {:?}, expected image/png",
            self.what,
            self.content_type
        );
        PngHeader::parse(&self.body).map_err(|e| format!("{}: {e}", self.what))
    }
}

/// Extracts the image id from an upload response, checking its form.
pub fn image_id_of(resp: &Resp) -> Result<String, String> {
    ensure!(
        resp.status == 200 || resp.status == 201,
        "{}: expected 200 or 201, got {}: {}",
        resp.what,
        resp.status,
        resp.snippet()
    );
    let json = resp.json()?;
    ensure!(
        json["message"] == "File uploaded successfully",
        "{}: unexpected message in {json}",
        resp.what
    );
    let id = json["image_id"]
        .as_str()
        .ok_or_else(|| format!("{}: no image_id string in {json}", resp.what))?;
    ensure!(
        id.strip_prefix("image_")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
        "{}: image_id {id:?} is not of the form image_<n>",
        resp.what
    );
    Ok(id.to_string())
}
