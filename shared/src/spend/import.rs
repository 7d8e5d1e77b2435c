//! The CSV exports people download from Google Ads, Meta Ads Manager and TikTok Ads Manager,
//! read as they come: title and date-range lines before the header, `Total` rows, quoted
//! numbers with thousands separators in either locale (`"1,234.56"`, `"1.250,40"`), currency
//! symbols, `--` for nothing, the currency in a column or in the cost header (`Amount spent
//! (USD)`), a UTF-8 BOM. Each line gives a row or a reason it was skipped.

use crate::revenue::money::{Amount, Currency};
use crate::spend::{MAX_ROWS, SpendRow, checked_ad_id, checked_count, checked_name};
use chrono::NaiveDate;
use serde::Serialize;

/// The platform whose export layout a file has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// Google Ads' reports.
    Google,
    /// Meta Ads Manager's exports.
    Meta,
    /// TikTok Ads Manager's exports.
    Tiktok,
}

impl ExportFormat {
    /// The format a `platform` parameter or form field names, refused as the API refuses it.
    pub fn from_param(text: Option<&str>) -> Result<Self, crate::fields::FieldError> {
        text.and_then(Self::parse).ok_or_else(|| {
            crate::fields::FieldError::new("platform", "must be one of google, meta, tiktok")
        })
    }

    /// The format a `platform=` parameter names.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "google" => Some(Self::Google),
            "meta" => Some(Self::Meta),
            "tiktok" => Some(Self::Tiktok),
            _ => None,
        }
    }

    fn platform(self) -> &'static str {
        match self {
            Self::Google => "google",
            Self::Meta => "meta",
            Self::Tiktok => "tiktok",
        }
    }

    /// The header names of each column, lower-cased; English first, then the Portuguese and
    /// Spanish of the accounts seen most.
    fn columns(self) -> Columns {
        match self {
            Self::Google => Columns {
                date: &["day", "date", "dia", "día"],
                campaign: &["campaign", "campanha", "campaña"],
                ad_set: &["ad group", "grupo de anúncios", "grupo de anuncios"],
                ad_name: &["ad name", "ad"],
                ad_id: &["ad id"],
                cost: &["cost", "custo", "costo"],
                currency: &[
                    "currency code",
                    "currency",
                    "código da moeda",
                    "código de moneda",
                ],
                impressions: &["impr.", "impressions", "impr"],
                clicks: &["clicks", "cliques", "clics"],
                end_date: &[],
            },
            Self::Meta => Columns {
                date: &[
                    "reporting starts",
                    "day",
                    "início dos relatórios",
                    "inicio del informe",
                ],
                campaign: &["campaign name", "nome da campanha", "nombre de la campaña"],
                ad_set: &[
                    "ad set name",
                    "nome do conjunto de anúncios",
                    "nombre del conjunto de anuncios",
                ],
                ad_name: &["ad name", "nome do anúncio", "nombre del anuncio"],
                ad_id: &[
                    "ad id",
                    "identificação do anúncio",
                    "identificador del anuncio",
                ],
                cost: &["amount spent", "valor usado", "importe gastado"],
                currency: &["currency", "moeda", "divisa"],
                impressions: &["impressions", "impressões", "impresiones"],
                clicks: &[
                    "link clicks",
                    "clicks (all)",
                    "cliques no link",
                    "clics en el enlace",
                ],
                end_date: &[
                    "reporting ends",
                    "término dos relatórios",
                    "fin del informe",
                ],
            },
            Self::Tiktok => Columns {
                date: &["by day", "date", "day"],
                campaign: &["campaign name", "campaign"],
                ad_set: &["ad group name", "ad group"],
                ad_name: &["ad name"],
                ad_id: &["ad id"],
                cost: &["cost", "total cost"],
                currency: &["currency"],
                impressions: &["impressions"],
                clicks: &["clicks (destination)", "clicks (all)", "clicks"],
                end_date: &[],
            },
        }
    }
}

struct Columns {
    date: &'static [&'static str],
    campaign: &'static [&'static str],
    ad_set: &'static [&'static str],
    ad_name: &'static [&'static str],
    ad_id: &'static [&'static str],
    cost: &'static [&'static str],
    currency: &'static [&'static str],
    impressions: &'static [&'static str],
    clicks: &'static [&'static str],
    end_date: &'static [&'static str],
}

/// A line of the file that gave no row, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The line number in the file (1 is the first).
    pub line: u64,
    /// Why it gave no row.
    pub reason: String,
}

/// What a file gave: its rows and the lines it skipped.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Parsed {
    /// Rows to store.
    pub rows: Vec<SpendRow>,
    /// Lines after the header that gave no row.
    pub skipped: Vec<Skipped>,
}

/// Why a file gave nothing at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// No line has the columns the platform's export has.
    #[error("no header line with the {0} export's columns (a date, campaign and cost column)")]
    NoHeader(&'static str),
    /// Not UTF-8 text, or not CSV.
    #[error("the file is not UTF-8 CSV: {0}")]
    Unreadable(String),
    /// More rows than one call takes.
    #[error("the file has more than {MAX_ROWS} rows; split it")]
    TooManyRows,
    /// A header, but no line gave a row.
    #[error("no usable row; skipped: {0}")]
    NoRows(String),
}

/// Why an import stored nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImportFailure {
    /// The file gave no row.
    #[error(transparent)]
    File(#[from] ImportError),
    /// The store refused the rows.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// What an import did: `{"imported", "replaced", "skipped"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Imported {
    /// Rows new and rows replaced.
    #[serde(flatten)]
    pub upserted: crate::spend::Upserted,
    /// Lines that gave no row, with their reasons.
    pub skipped: Vec<Skipped>,
}

/// Reads `file` as `format`'s export and stores its rows: what `POST /spend/import` and the
/// dashboard's import form do alike.
pub async fn import_into(
    store: &dyn crate::spend::store::SpendStore,
    format: ExportFormat,
    file: &[u8],
) -> Result<Imported, ImportFailure> {
    let parsed = parse_export(format, file)?;
    let upserted = store.upsert_spend(&parsed.rows).await?;
    tracing::info!(
        rows = parsed.rows.len(),
        skipped = parsed.skipped.len(),
        "spend imported"
    );
    Ok(Imported {
        upserted,
        skipped: parsed.skipped,
    })
}

/// Where each column sits in the header, and the currency the cost header names.
struct Layout {
    date: usize,
    campaign: usize,
    cost: usize,
    ad_set: Option<usize>,
    ad_name: Option<usize>,
    ad_id: Option<usize>,
    currency: Option<usize>,
    impressions: Option<usize>,
    clicks: Option<usize>,
    end_date: Option<usize>,
    header_currency: Option<Currency>,
}

/// `Amount spent (USD)` → (`amount spent`, `USD`).
fn header_parts(cell: &str) -> (String, Option<Currency>) {
    let cell = cell.trim().trim_start_matches('\u{feff}').trim();
    if let (Some(open), true) = (cell.rfind('('), cell.ends_with(')')) {
        if let Ok(currency) = Currency::parse(&cell[open + 1..cell.len() - 1]) {
            return (cell[..open].trim().to_lowercase(), Some(currency));
        }
    }
    (cell.to_lowercase(), None)
}

fn layout(format: ExportFormat, header: &csv::StringRecord) -> Option<Layout> {
    let names: Vec<(String, Option<Currency>)> = header.iter().map(header_parts).collect();
    let find = |wanted: &[&str]| {
        wanted
            .iter()
            .find_map(|name| names.iter().position(|(cell, _)| cell == name))
    };
    let columns = format.columns();
    let cost = find(columns.cost)?;
    Some(Layout {
        date: find(columns.date)?,
        campaign: find(columns.campaign)?,
        cost,
        ad_set: find(columns.ad_set),
        ad_name: find(columns.ad_name),
        ad_id: find(columns.ad_id),
        currency: find(columns.currency),
        impressions: find(columns.impressions),
        clicks: find(columns.clicks),
        end_date: find(columns.end_date),
        header_currency: names[cost].1,
    })
}

/// A number as exports write it, `None` for nothing (`--`, empty). The decimal separator is
/// the last `.` or `,` when both appear (`1,234.56`, `1.250,40`); a lone separator followed by
/// exactly three digits groups thousands (`18,230`), any other lone one is decimal (`380.00`,
/// `12,5`). Currency symbols, spaces and `%` around the digits are dropped.
pub fn export_number(text: &str) -> Result<Option<String>, String> {
    let kept: String = text
        .chars()
        .filter(|c| c.is_ascii_digit() || matches!(c, '.' | ',' | '-'))
        .collect();
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.chars().all(|c| c == '-') {
        return Ok(None);
    }
    if !kept.chars().any(|c| c.is_ascii_digit()) {
        return Err(format!(
            "{:?} is not a number",
            trimmed.chars().take(40).collect::<String>()
        ));
    }
    let decimal = match (kept.rfind('.'), kept.rfind(',')) {
        (Some(dot), Some(comma)) => Some(dot.max(comma)),
        (Some(at), None) | (None, Some(at)) => {
            let separator = kept.as_bytes()[at];
            let lone = kept.bytes().filter(|b| *b == separator).count() == 1;
            (lone && kept.len() - at - 1 != 3).then_some(at)
        }
        (None, None) => None,
    };
    let mut plain = String::with_capacity(kept.len());
    for (index, c) in kept.char_indices() {
        match c {
            '.' | ',' if Some(index) == decimal => plain.push('.'),
            '.' | ',' => {}
            other => plain.push(other),
        }
    }
    Ok(Some(plain))
}

/// A day as the exports write it: `2026-11-24`, `2026/11/24`, `Nov 24, 2026`, `24 Nov 2026`,
/// `24.11.2026`. Slashed day-month orders are refused: `03/04/2026` reads both ways.
pub fn export_day(text: &str) -> Option<String> {
    let text = text.trim();
    [
        "%Y-%m-%d",
        "%Y/%m/%d",
        "%b %d, %Y",
        "%B %d, %Y",
        "%d %b %Y",
        "%d %B %Y",
        "%d.%m.%Y",
    ]
    .iter()
    .find_map(|format| NaiveDate::parse_from_str(text, format).ok())
    .and_then(|day| crate::time::accepted_day(day).ok())
    .map(|day| day.format("%Y-%m-%d").to_string())
}

fn cell(record: &csv::StringRecord, at: Option<usize>) -> &str {
    at.and_then(|at| record.get(at)).unwrap_or("").trim()
}

/// One data line's row, or why it gives none.
fn row_of(
    format: ExportFormat,
    layout: &Layout,
    record: &csv::StringRecord,
) -> Result<SpendRow, String> {
    let date_text = cell(record, Some(layout.date));
    let campaign_text = cell(record, Some(layout.campaign));
    if date_text.to_lowercase().starts_with("total")
        || campaign_text.to_lowercase().starts_with("total")
    {
        return Err("a total row".to_owned());
    }
    let date = export_day(date_text)
        .ok_or_else(|| format!("date {date_text:?} is not a day this export writes"))?;
    if let Some(end) = layout.end_date {
        let end_text = cell(record, Some(end));
        if export_day(end_text).as_deref() != Some(date.as_str()) {
            return Err("the row spans more than one day: export with a breakdown by day".into());
        }
    }
    let campaign = checked_name("campaign", campaign_text).map_err(|e| e.to_string())?;
    if campaign.is_empty() {
        return Err("no campaign".to_owned());
    }
    let currency_text = cell(record, layout.currency);
    let currency = match (currency_text.is_empty(), layout.header_currency) {
        (false, _) => Currency::parse(currency_text)
            .map_err(|_| format!("currency {currency_text:?} is not a 3-letter code"))?,
        (true, Some(currency)) => currency,
        (true, None) => {
            return Err("no currency: neither a column nor the cost header names one".into());
        }
    };
    let spend =
        match export_number(cell(record, Some(layout.cost))).map_err(|e| format!("cost: {e}"))? {
            None => Amount::ZERO,
            Some(plain) => Amount::parse_payout(&plain).map_err(|e| format!("cost: {e}"))?,
        };
    let count = |name: &str, at: Option<usize>| -> Result<u64, String> {
        let Some(plain) = export_number(cell(record, at)).map_err(|e| format!("{name}: {e}"))?
        else {
            return Ok(0);
        };
        let value: u64 = plain
            .parse()
            .map_err(|_| format!("{name}: {plain:?} is not a whole number"))?;
        checked_count(name, value).map_err(|e| e.to_string())
    };
    let ad_name =
        checked_name("ad_name", cell(record, layout.ad_name)).map_err(|e| e.to_string())?;
    Ok(SpendRow {
        date,
        platform: format.platform().to_owned(),
        campaign,
        ad_set: checked_name("ad_set", cell(record, layout.ad_set)).map_err(|e| e.to_string())?,
        ad_id: checked_ad_id("ad_id", cell(record, layout.ad_id)).map_err(|e| e.to_string())?,
        ad_name: (!ad_name.is_empty()).then_some(ad_name),
        spend,
        currency,
        impressions: count("impressions", layout.impressions)?,
        clicks: count("clicks", layout.clicks)?,
    })
}

/// The file's line a record starts on. The reader counts no blank lines and starts a record's
/// position before the blank lines it passed over, so the line is counted from the bytes.
pub(crate) fn line_of(bytes: &[u8], position: Option<&csv::Position>) -> u64 {
    let Some(position) = position else { return 0 };
    let mut start = (position.byte() as usize).min(bytes.len());
    while bytes
        .get(start)
        .is_some_and(|byte| matches!(byte, b'\r' | b'\n'))
    {
        start += 1;
    }
    1 + bytes[..start].iter().filter(|byte| **byte == b'\n').count() as u64
}

/// Reads an export of `format`: lines before the header are the export's title and range and
/// are passed over; after it, each line gives a row or a [`Skipped`] reason (a blank line gives
/// neither). A file with no header, or with no usable row, is an [`ImportError`].
pub fn parse_export(format: ExportFormat, bytes: &[u8]) -> Result<Parsed, ImportError> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut layout_found: Option<Layout> = None;
    let mut parsed = Parsed::default();
    for record in reader.records() {
        let record = record.map_err(|error| ImportError::Unreadable(error.to_string()))?;
        let line = line_of(bytes, record.position());
        let Some(layout) = &layout_found else {
            layout_found = layout(format, &record);
            continue;
        };
        if record.iter().all(|value| value.trim().is_empty()) {
            continue;
        }
        match row_of(format, layout, &record) {
            Ok(row) if parsed.rows.len() == MAX_ROWS => {
                let _ = row;
                return Err(ImportError::TooManyRows);
            }
            Ok(row) => parsed.rows.push(row),
            Err(reason) => parsed.skipped.push(Skipped { line, reason }),
        }
    }
    if layout_found.is_none() {
        return Err(ImportError::NoHeader(format.platform()));
    }
    if parsed.rows.is_empty() {
        return Err(ImportError::NoRows(first_reasons(&parsed.skipped)));
    }
    Ok(parsed)
}

/// The first lines a file with no usable row skipped, and why, for its 400.
pub(crate) fn first_reasons(skipped: &[Skipped]) -> String {
    let reasons: Vec<String> = skipped
        .iter()
        .take(5)
        .map(|skip| format!("line {}: {}", skip.line, skip.reason))
        .collect();
    if reasons.is_empty() {
        "none (the file ends at its header)".to_owned()
    } else {
        reasons.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_in_either_locale() {
        let read = |text: &str| export_number(text).unwrap();
        assert_eq!(read("\"1,204.50\"").as_deref(), Some("1204.50"));
        assert_eq!(read("1.250,40").as_deref(), Some("1250.40"));
        assert_eq!(read("380.00").as_deref(), Some("380.00"));
        assert_eq!(read("18,230").as_deref(), Some("18230"));
        assert_eq!(read("12,5").as_deref(), Some("12.5"));
        assert_eq!(read("R$ 1.234.567,89").as_deref(), Some("1234567.89"));
        assert_eq!(read("$1,234,567").as_deref(), Some("1234567"));
        assert_eq!(read("--"), None);
        assert_eq!(read(""), None);
        assert!(export_number("n/a").is_err());
    }

    #[test]
    fn days_read_as_exports_write_them() {
        assert_eq!(export_day("Nov 24, 2026").as_deref(), Some("2026-11-24"));
        assert_eq!(export_day("24.11.2026").as_deref(), Some("2026-11-24"));
        assert_eq!(export_day("03/04/2026"), None);
    }
}
