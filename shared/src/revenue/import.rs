//! CSV conversion import: a file of conversions, each row recorded exactly as its postback
//! would be (the same parameter names, [`Postback::parse`], and the same
//! [`conversions::record_postback`]: the same dedupe, credit and counters), read and answered
//! as a stream, so a file of 100,000 rows never sits in memory.
//!
//! The file is parsed with `csv-core`'s push parser, fed the body's chunks as they arrive:
//! what is held at once is one chunk, one row (at most [`MAX_ROW_BYTES`]) and the rows being
//! recorded ([`CONCURRENT_ROWS`]). The answer is NDJSON, one line per row in file order
//! (`{"line", "status", "conversion_id", "attribution"?, "reason"?}`) and a last line with the
//! totals by status, or, when the import stopped early, the error and the totals so far.

use crate::revenue::conversions::{self, Recorded};
use crate::revenue::postback::{Network, Postback};
use crate::revenue::store::RevenueStore;
use crate::store::StoreError;
use crate::time::Timestamp;
use bytes::{Buf, Bytes};
use futures::stream::{self, BoxStream, Stream, StreamExt};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The largest file one call takes. A 100,000-row file of click ids (26 characters),
/// conversion ids, payouts, currencies and times is 7–9 MB; API Gateway refuses more than
/// 10 MB before the function runs.
pub const MAX_IMPORT_BYTES: usize = 16 * 1024 * 1024;
/// The most rows one call records; the rows past it are not read.
pub const MAX_IMPORT_ROWS: u64 = 100_000;
/// The longest row; a longer one is answered `invalid` (a postback's fields fit in 1 KB).
pub const MAX_ROW_BYTES: usize = 4096;
/// The most columns a row may have.
pub const MAX_COLUMNS: usize = 32;
/// Rows recorded at the same time (each a few store round trips): answers still come in
/// file order. Two rows of one file naming one conversion: one is recorded, the other
/// answered `duplicate`.
pub const CONCURRENT_ROWS: usize = 8;

/// Why an import could not start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The header names no usable set of columns, or an unknown one: nothing is stored.
    #[error("{0}")]
    Header(String),
    /// The file is larger than [`MAX_IMPORT_BYTES`].
    #[error("the file is larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// The file has more than [`MAX_IMPORT_ROWS`] rows.
    #[error("the file has more than {limit} rows; import the rest in another call")]
    TooManyRows {
        /// The limit.
        limit: u64,
    },
    /// The body broke off.
    #[error("the request body could not be read: {0}")]
    Body(String),
    /// The store failed; the rows answered before were recorded, the rest were not.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ImportError {
    /// The machine-readable code of the error, in the answer's last line.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Header(_) => "invalid_header",
            Self::TooLarge { .. } => "payload_too_large",
            Self::TooManyRows { .. } => "too_many_rows",
            Self::Body(_) => "invalid_body",
            Self::Store(_) => "unavailable",
        }
    }
}

/// One row's answer: the postback's answer with the row's line, or `invalid` with a reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowAnswer {
    /// The line of the file the row ends on (the header is line 1).
    pub line: u64,
    /// As the postback answers it, or `invalid`.
    pub status: &'static str,
    /// The conversion id answered (`null` for an invalid row).
    pub conversion_id: Option<String>,
    /// `click_through` or `view_through`, when credited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribution: Option<&'static str>,
    /// Why an invalid row was not recorded, naming the field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The status of a row that could not be recorded.
pub const INVALID: &str = "invalid";

/// A parsed row, before it is recorded.
enum Row {
    Fields { line: u64, fields: Vec<String> },
    Invalid { line: u64, reason: String },
}

/// The body, parsed one record at a time as its chunks arrive.
struct Records<S> {
    body: S,
    parser: csv_core::Reader,
    chunk: Bytes,
    at_start: bool,
    eof: bool,
    read: usize,
    last_byte: u8,
    output: Vec<u8>,
    ends: Vec<usize>,
}

impl<S, E> Records<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    fn new(body: S) -> Self {
        Self {
            body,
            parser: csv_core::Reader::new(),
            chunk: Bytes::new(),
            at_start: true,
            eof: false,
            read: 0,
            last_byte: 0,
            output: vec![0; 256],
            ends: vec![0; 16],
        }
    }

    /// The next record, with the line it ends on: its fields, or why it is unusable (too
    /// long, too many columns, not UTF-8). `None` at the end of the file.
    async fn next(&mut self) -> Result<Option<(u64, Result<Vec<String>, String>)>, ImportError> {
        let (mut out_len, mut ends_len, mut oversized) = (0usize, 0usize, false);
        loop {
            if self.chunk.is_empty() && !self.eof {
                match self.body.next().await {
                    Some(Ok(chunk)) => {
                        self.read += chunk.len();
                        if self.read > MAX_IMPORT_BYTES {
                            return Err(ImportError::TooLarge {
                                limit: MAX_IMPORT_BYTES,
                            });
                        }
                        self.chunk = chunk;
                        if self.at_start && !self.chunk.is_empty() {
                            self.at_start = false;
                            if self.chunk.starts_with(b"\xEF\xBB\xBF") {
                                self.chunk.advance(3);
                            }
                        }
                        continue;
                    }
                    Some(Err(error)) => return Err(ImportError::Body(error.to_string())),
                    None => self.eof = true,
                }
            }
            let input: &[u8] = if self.eof { &[] } else { &self.chunk };
            let (result, nin, nout, nend) = self.parser.read_record(
                input,
                &mut self.output[out_len..],
                &mut self.ends[ends_len..],
            );
            if nin > 0 {
                self.last_byte = input[nin - 1];
            }
            self.chunk.advance(nin);
            out_len += nout;
            ends_len += nend;
            match result {
                csv_core::ReadRecordResult::InputEmpty => {}
                csv_core::ReadRecordResult::OutputFull => {
                    if self.output.len() >= MAX_ROW_BYTES {
                        // Keep reading the row to find its end, overwriting: it is refused.
                        oversized = true;
                        out_len = 0;
                    } else {
                        self.output.resize(self.output.len() * 2, 0);
                    }
                }
                csv_core::ReadRecordResult::OutputEndsFull => {
                    if self.ends.len() >= MAX_COLUMNS {
                        oversized = true;
                        ends_len = 0;
                    } else {
                        self.ends.resize(self.ends.len() * 2, 0);
                    }
                }
                csv_core::ReadRecordResult::Record => {
                    // The parser counts a line on each `\n` read; the row's own terminator
                    // is its last byte when it has one.
                    let line = self.parser.line() - u64::from(self.last_byte == b'\n');
                    if oversized {
                        return Ok(Some((
                            line,
                            Err(format!(
                                "longer than {MAX_ROW_BYTES} bytes or more than {MAX_COLUMNS} columns"
                            )),
                        )));
                    }
                    let mut fields = Vec::with_capacity(ends_len);
                    let mut start = 0;
                    for &end in &self.ends[..ends_len] {
                        match std::str::from_utf8(&self.output[start..end]) {
                            Ok(text) => fields.push(text.to_owned()),
                            Err(_) => {
                                return Ok(Some((line, Err("is not UTF-8 text".to_owned()))));
                            }
                        }
                        start = end;
                    }
                    return Ok(Some((line, Ok(fields))));
                }
                csv_core::ReadRecordResult::End => return Ok(None),
            }
        }
    }
}

/// The header's columns, checked against the names `network`'s postbacks take.
fn check_header(network: Network, header: &[String]) -> Result<Vec<String>, ImportError> {
    let known = network.parameter_names();
    let columns: Vec<String> = header.iter().map(|name| name.trim().to_owned()).collect();
    for (index, column) in columns.iter().enumerate() {
        if !known.contains(&column.as_str()) {
            return Err(ImportError::Header(format!(
                "column {} ({column:?}) is not a {} postback parameter; the columns may be {}",
                index + 1,
                network.as_str(),
                known.join(", ")
            )));
        }
        if columns[..index].contains(column) {
            return Err(ImportError::Header(format!(
                "column {column:?} appears twice"
            )));
        }
    }
    if !network.names_a_converter(&columns) {
        return Err(ImportError::Header(format!(
            "the header needs a click id column ({}) or instance_id, contact_id and offer_id",
            network.click_id_names().join(" or ")
        )));
    }
    Ok(columns)
}

/// The running totals by status.
#[derive(Debug, Default, Clone, Serialize)]
struct Totals(BTreeMap<&'static str, u64>);

impl Totals {
    fn rows(&self) -> u64 {
        self.0.values().sum()
    }
}

/// One NDJSON line.
fn ndjson(value: &impl Serialize) -> Bytes {
    let mut line = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    line.push(b'\n');
    line.into()
}

/// Records one parsed row as its postback would be.
async fn record_row(
    store: &dyn RevenueStore,
    network: Network,
    columns: &[String],
    row: Row,
) -> Result<RowAnswer, ImportError> {
    let invalid = |line: u64, reason: String| RowAnswer {
        line,
        status: INVALID,
        conversion_id: None,
        attribution: None,
        reason: Some(reason),
    };
    let (line, fields) = match row {
        Row::Invalid { line, reason } => return Ok(invalid(line, reason)),
        Row::Fields { line, fields } => (line, fields),
    };
    if fields.len() != columns.len() {
        return Ok(invalid(
            line,
            format!(
                "has {} fields, the header {} columns",
                fields.len(),
                columns.len()
            ),
        ));
    }
    let params: Vec<(String, String)> = columns.iter().cloned().zip(fields).collect();
    let now = Timestamp::now();
    let postback = match Postback::parse(network, &params, now) {
        Ok(postback) => postback,
        Err(refused) => return Ok(invalid(line, refused.to_string())),
    };
    let recorded: Recorded = conversions::record_postback(store, &postback, now).await?;
    let answer = recorded.answer();
    Ok(RowAnswer {
        line,
        status: answer.status,
        conversion_id: Some(answer.conversion_id),
        attribution: answer.attribution,
        reason: None,
    })
}

/// Reads the header of `body` (a CSV of `network`'s postback parameters) and answers the
/// stream of NDJSON lines that records its rows: an error before the first row is recorded
/// (a bad header, a file too large, a store fault on the first row) is returned instead, with
/// nothing stored. Later the lines stop at an error with a last line naming it.
pub async fn import<S, E>(
    store: Arc<dyn RevenueStore>,
    network: Network,
    body: S,
) -> Result<BoxStream<'static, Bytes>, ImportError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let mut records = Records::new(body);
    let columns = match records.next().await? {
        Some((_, Ok(header))) if !header.iter().all(|field| field.trim().is_empty()) => {
            check_header(network, &header)?
        }
        Some((_, Ok(_))) | None => {
            return Err(ImportError::Header(
                "the file is empty: it needs a header and rows".to_owned(),
            ));
        }
        Some((_, Err(reason))) => {
            return Err(ImportError::Header(format!("the header is {reason}")));
        }
    };
    let columns = Arc::new(columns);
    // Rows in file order, parsed; the stream ends after an error.
    let rows = stream::unfold(
        (records, 0u64, false),
        |(mut records, mut count, failed)| async move {
            if failed {
                return None;
            }
            loop {
                return match records.next().await {
                    Ok(None) => None,
                    // A blank row (one empty field) is no row.
                    Ok(Some((_, Ok(fields))))
                        if fields.iter().all(|field| field.trim().is_empty()) =>
                    {
                        continue;
                    }
                    Ok(Some(_)) if count == MAX_IMPORT_ROWS => Some((
                        Err(ImportError::TooManyRows {
                            limit: MAX_IMPORT_ROWS,
                        }),
                        (records, count, true),
                    )),
                    Ok(Some((line, parsed))) => {
                        count += 1;
                        let row = match parsed {
                            Ok(fields) => Row::Fields { line, fields },
                            Err(reason) => Row::Invalid { line, reason },
                        };
                        Some((Ok(row), (records, count, false)))
                    }
                    Err(error) => Some((Err(error), (records, count, true))),
                };
            }
        },
    );
    let mut answers = rows
        .map(move |row| {
            let (store, columns) = (store.clone(), columns.clone());
            async move { record_row(store.as_ref(), network, &columns, row?).await }
        })
        .buffered(CONCURRENT_ROWS)
        .boxed();
    // The first row decides whether the call fails whole (nothing recorded) or answers.
    let first = answers.next().await.transpose()?;
    let lines = stream::unfold(
        (first, answers, Totals::default(), false),
        |(first, mut answers, mut totals, done)| async move {
            if done {
                return None;
            }
            let next = match first {
                Some(answer) => Some(Ok(answer)),
                None => answers.next().await,
            };
            match next {
                Some(Ok(answer)) => {
                    *totals.0.entry(answer.status).or_default() += 1;
                    Some((ndjson(&answer), (None, answers, totals, false)))
                }
                Some(Err(error)) => {
                    tracing::warn!(error = %error, rows = totals.rows(), "conversion import stopped");
                    let line = ndjson(&serde_json::json!({
                        "error": { "code": error.code(), "message": error.to_string() },
                        "rows": totals.rows(),
                        "totals": totals,
                    }));
                    Some((line, (None, answers, totals, true)))
                }
                None => {
                    for (status, count) in &totals.0 {
                        crate::metrics::count("ConversionsImported", &[("Status", status)], *count);
                    }
                    tracing::info!(rows = totals.rows(), "conversions imported");
                    let line = ndjson(&serde_json::json!({
                        "rows": totals.rows(),
                        "totals": totals,
                    }));
                    Some((line, (None, answers, totals, true)))
                }
            }
        },
    );
    Ok(lines.boxed())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(chunks: &[&[u8]]) -> Vec<(u64, Result<Vec<String>, String>)> {
        let body = stream::iter(
            chunks
                .iter()
                .map(|chunk| Ok::<_, std::io::Error>(Bytes::copy_from_slice(chunk)))
                .collect::<Vec<_>>(),
        );
        let mut records = Records::new(body);
        let mut found = Vec::new();
        while let Some(record) = records.next().await.unwrap() {
            found.push(record);
        }
        found
    }

    fn fields(texts: &[&str]) -> Result<Vec<String>, String> {
        Ok(texts.iter().map(|t| t.to_string()).collect())
    }

    #[tokio::test]
    async fn records_span_chunks_and_keep_their_lines() {
        let found = parse(&[
            b"\xEF\xBB\xBFclick_id,pay",
            b"out\r\nA,1.5\n\n\"B, quoted\",\"2\"\nC,3",
        ])
        .await;
        assert_eq!(
            found,
            vec![
                (1, fields(&["click_id", "payout"])),
                (2, fields(&["A", "1.5"])),
                (4, fields(&["B, quoted", "2"])),
                (5, fields(&["C", "3"])),
            ]
        );
    }

    #[tokio::test]
    async fn long_rows_are_refused_and_the_next_row_still_reads() {
        let long = format!("click_id\n{}\nB\n", "x".repeat(MAX_ROW_BYTES + 10));
        let found = parse(&[long.as_bytes()]).await;
        assert_eq!(found.len(), 3);
        assert!(found[1].1.is_err());
        assert_eq!(found[2], (3, fields(&["B"])));
        let wide = format!("click_id\n{}\n", ",".repeat(MAX_COLUMNS + 1));
        assert!(parse(&[wide.as_bytes()]).await[1].1.is_err());
    }

    #[test]
    fn headers_take_the_networks_own_names_once() {
        let header =
            |names: &[&str]| -> Vec<String> { names.iter().map(|n| n.to_string()).collect() };
        assert!(
            check_header(
                Network::Tune,
                &header(&["aff_sub", "transaction_id", "payout"])
            )
            .is_ok()
        );
        assert!(check_header(Network::Everflow, &header(&["sub1", "sale_amount"])).is_ok());
        assert!(
            check_header(
                Network::Generic,
                &header(&["instance_id", "contact_id", "offer_id"])
            )
            .is_ok()
        );
        for (network, names) in [
            (Network::Generic, &["aff_sub", "payout"][..]),
            (Network::Tune, &["transaction_id", "payout"][..]),
            (Network::Tune, &["aff_sub", "payot"][..]),
            (Network::Tune, &["aff_sub", "aff_sub"][..]),
            (Network::Generic, &["instance_id", "contact_id"][..]),
            (Network::Generic, &["click_id", "token"][..]),
        ] {
            assert!(
                matches!(
                    check_header(network, &header(names)),
                    Err(ImportError::Header(_))
                ),
                "{network:?} {names:?}"
            );
        }
    }
}
