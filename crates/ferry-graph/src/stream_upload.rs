//! An upload session fed as the bytes arrive, for a file whose size is known up front (an S3
//! PUT with its Content-Length): nothing is spooled to disk. Bytes go out in fragments of
//! [`FRAGMENT_SIZE`] (a multiple of 320 KiB), in order; only the fragment being sent is held
//! in memory, so a lost acknowledgement can be answered by sending it again. The session is
//! opened with `deferCommit`: the file appears only at [`PendingUpload::commit`].

use bytes::{Bytes, BytesMut};

use crate::client::{GraphClient, json};
use crate::error::{Error, Result};
use crate::http::Auth;
use crate::model::UploadSession;
use crate::names::check_path;
use crate::quickxor::QuickXorHash;
use crate::transfer::{Conflict, FRAGMENT_SIZE, MAX_FRAGMENT_FAILURES, PendingUpload, next_offset};

/// Bytes on their way into a `deferCommit` upload session.
#[derive(Debug)]
pub struct StreamingUpload {
    pending: PendingUpload,
    size: u64,
    /// Bytes OneDrive has acknowledged.
    sent: u64,
    /// Bytes received and not sent yet (less than a fragment, until the end).
    buffer: BytesMut,
    hasher: QuickXorHash,
}

impl GraphClient {
    /// Opens an upload of exactly `size` bytes (at least one) to `path`; missing parent
    /// folders are created, as [`upload_file`](Self::upload_file) does.
    pub async fn upload_stream(
        &self,
        path: &str,
        size: u64,
        conflict: Conflict,
    ) -> Result<StreamingUpload> {
        check_path(path.trim_matches('/'))?;
        if size == 0 {
            return Err(Error::protocol("an upload session needs at least one byte"));
        }
        let session = match self.create_session(path, conflict, None, true).await {
            Err(e) if e.graph_code() == Some("itemNotFound") => {
                self.create_parent(path, e).await?;
                self.create_session(path, conflict, None, true).await?
            }
            result => result?,
        };
        Ok(StreamingUpload {
            pending: PendingUpload {
                client: self.clone(),
                upload_url: session.upload_url,
                path: path.to_owned(),
                sent_hash: String::new(),
            },
            size,
            sent: 0,
            buffer: BytesMut::new(),
            hasher: QuickXorHash::new(),
        })
    }
}

impl StreamingUpload {
    /// Takes the next bytes; whole fragments go to OneDrive as they fill.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<()> {
        let total = self.sent + self.buffer.len() as u64 + chunk.len() as u64;
        if total > self.size {
            return Err(Error::protocol(format!(
                "more bytes than the {} announced for {}",
                self.size, self.pending.path
            )));
        }
        self.hasher.update(chunk);
        self.buffer.extend_from_slice(chunk);
        while self.buffer.len() as u64 >= FRAGMENT_SIZE {
            let fragment = self.buffer.split_to(FRAGMENT_SIZE as usize).freeze();
            self.send(fragment).await?;
        }
        Ok(())
    }

    /// Sends what is left; the upload then waits for [`PendingUpload::commit`].
    pub async fn finish(mut self) -> Result<PendingUpload> {
        let received = self.sent + self.buffer.len() as u64;
        if received != self.size {
            let message = format!(
                "{received} bytes of the {} announced arrived for {}",
                self.size, self.pending.path
            );
            let _ = self.pending.cancel().await;
            return Err(Error::protocol(message));
        }
        let rest = self.buffer.split().freeze();
        if !rest.is_empty() {
            self.send(rest).await?;
        }
        self.pending.sent_hash = self.hasher.finish_base64();
        Ok(self.pending)
    }

    /// Gives the session back.
    pub async fn cancel(self) -> Result<()> {
        self.pending.cancel().await
    }

    /// Sends one fragment, starting at `self.sent`; when an answer is lost, asks the
    /// session how much it holds and sends the rest of the fragment again.
    async fn send(&mut self, fragment: Bytes) -> Result<()> {
        let end = self.sent + fragment.len() as u64;
        let mut failures = 0;
        while self.sent < end {
            let part = fragment.slice((fragment.len() as u64 - (end - self.sent)) as usize..);
            let range = format!("bytes {}-{}/{}", self.sent, end - 1, self.size);
            let url = &self.pending.upload_url;
            let answer = self
                .pending
                .client
                .inner
                .transport
                .send("upload fragment", Auth::PreAuthenticated, |http| {
                    http.put(url)
                        .header("content-range", &range)
                        .body(part.clone())
                })
                .await;
            match answer {
                Ok(response) => {
                    let status: UploadSession = json(url, response).await?;
                    self.sent = next_offset(&status, end).min(end);
                    self.pending.client.report(part.len() as u64);
                }
                Err(e)
                    if failures < MAX_FRAGMENT_FAILURES
                        && (e.status() == Some(416) || e.is_transient()) =>
                {
                    failures += 1;
                    let status: UploadSession = self
                        .pending
                        .client
                        .get_json_pre_authenticated("upload session status", url)
                        .await?;
                    let holds = next_offset(&status, self.sent);
                    if holds < self.sent {
                        return Err(Error::protocol(format!(
                            "the upload session of {} lost bytes it had acknowledged",
                            self.pending.path
                        )));
                    }
                    self.sent = holds.min(end);
                }
                Err(e) => {
                    let _ = self.pending.client.cancel_session(url).await;
                    return Err(e);
                }
            }
        }
        Ok(())
    }
}
