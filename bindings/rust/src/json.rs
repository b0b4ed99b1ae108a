//! Feature `serde`: JSON request bodies from serde types, answers into them.
use crate::error::Error;
use crate::request::Request;
use crate::response::Response;

impl Request {
    /// Serializes `body` as the JSON body (and sets the content type).
    /// A value that cannot be serialized makes the submit fail with
    /// `Error::Invalid`.
    pub fn json_value<T: serde::Serialize + ?Sized>(self, body: &T) -> Self {
        match serde_json::to_vec(body) {
            Ok(v) => self.json(v),
            Err(_) => {
                let mut r = self;
                r.bad.get_or_insert("JSON body could not be serialized (serde_json)");
                r
            }
        }
    }
}

impl Response {
    /// Parses the body as JSON into `T` (`Error::Protocol` when it does not fit).
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(self.body()).map_err(|e| Error::Protocol(format!("answer is not the expected JSON: {e}")))
    }
}
