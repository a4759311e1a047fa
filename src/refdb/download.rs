//! Fetching a database over HTTP(S), resuming an interrupted download with a Range request.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use crate::error::{Error, IoContext, Result};
use crate::progress::{CancelToken, ProgressMeter, ProgressSink};

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(20)))
        .timeout_recv_body(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// GETs a small document (a catalog), at most 16 MB.
pub fn get_text(url: &str) -> Result<String> {
    if let Some(path) = url
        .strip_prefix("file://")
        .or((!url.contains("://")).then_some(url))
    {
        return std::fs::read_to_string(path).at(path);
    }
    let mut resp = agent()
        .get(url)
        .call()
        .map_err(|e| Error::invalid(format!("{url}: {e}")))?;
    if resp.status().as_u16() != 200 {
        return Err(Error::invalid(format!("{url}: HTTP {}", resp.status())));
    }
    resp.body_mut()
        .with_config()
        .limit(16 << 20)
        .read_to_string()
        .map_err(|e| Error::invalid(format!("{url}: {e}")))
}

/// Downloads `url` into `partial`, continuing from what `partial` already holds. On success the
/// whole file is in `partial`; on failure what arrived stays there for the next attempt.
pub fn download(
    url: &str,
    partial: &Path,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<u64> {
    let have = std::fs::metadata(partial).map(|m| m.len()).unwrap_or(0);
    let mut req = agent().get(url);
    if have > 0 {
        req = req.header("Range", format!("bytes={have}-"));
    }
    let resp = req
        .call()
        .map_err(|e| Error::invalid(format!("{url}: cannot download: {e}")))?;
    let status = resp.status().as_u16();
    let (append, total) = match status {
        206 => {
            // Content-Range: bytes start-end/total
            let range = resp
                .headers()
                .get("content-range")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let start: Option<u64> = range
                .strip_prefix("bytes ")
                .and_then(|r| r.split('-').next())
                .and_then(|s| s.parse().ok());
            if start != Some(have) {
                return Err(Error::invalid(format!(
                    "{url}: the server resumed at {range:?}, not at byte {have}"
                )));
            }
            let total = range.rsplit('/').next().and_then(|t| t.parse().ok());
            (true, total)
        }
        200 => (false, resp.body().content_length()),
        416 if have > 0 => return Ok(have), // nothing left to fetch: the file is complete
        404 => return Err(Error::NotFound(format!("{url} (HTTP 404)"))),
        other => return Err(Error::invalid(format!("{url}: HTTP {other}"))),
    };
    let mut file = if append {
        std::fs::OpenOptions::new()
            .append(true)
            .open(partial)
            .at(partial)?
    } else {
        std::fs::File::create(partial).at(partial)?
    };
    let mut meter = ProgressMeter::new(progress, "download");
    let start = if append { have } else { 0 };
    meter.stage("downloading", total);
    meter.done = start;
    let mut reader = resp.into_body().into_reader();
    let mut buf = vec![0u8; 256 * 1024];
    let mut written = start;
    loop {
        cancel.check()?;
        let n = reader.read(&mut buf).map_err(|e| Error::invalid(format!("{url}: download interrupted after {written} bytes ({e}); run the same command again to resume")))?;
        if n == 0 {
            break;
        }
        file.write_all(&buf[..n]).at(partial)?;
        written += n as u64;
        meter.advance(n as u64);
    }
    file.sync_all().at(partial)?;
    if let Some(t) = total {
        if written != t {
            return Err(Error::invalid(format!("{url}: download stopped at {written} of {t} bytes; run the same command again to resume")));
        }
    }
    meter.finish();
    Ok(written)
}
