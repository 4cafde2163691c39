//! CSV answers: any list an operator reads as JSON can also be had as a
//! spreadsheet, by `?format=csv` or `Accept: text/csv`.
//!
//! A handler reads the caller's choice with [`wants_csv`], builds its rows
//! as usual, and answers [`csv_response`] when CSV was asked for. The body is
//! a stream of lines (written out as the client reads), so a large export
//! never becomes one big string. A row type says its columns once, by
//! implementing [`CsvRow`]. In the OpenAPI document, the operation lists
//! `text/csv` as a second content type of its 200 answer.

use std::convert::Infallible;

use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::Response,
};
use bytes::Bytes;

use super::error::ApiError;

pub const CSV_CONTENT_TYPE: &str = "text/csv; charset=utf-8";

/// Rows written at a time into one chunk of the body.
const ROWS_PER_CHUNK: usize = 256;

/// One line of a CSV answer.
pub trait CsvRow {
    /// The column names, in order.
    fn header() -> &'static [&'static str];
    /// This row's cells, in the header's order (use [`cell`] for text).
    fn cells(&self) -> Vec<String>;
}

/// Whether the caller asked for CSV: `format` (`json` or `csv`, from the
/// query) wins over an `Accept` header naming `text/csv`.
pub fn wants_csv(headers: &HeaderMap, format: Option<&str>) -> Result<bool, ApiError> {
    match format {
        Some("csv") => return Ok(true),
        Some("json") => return Ok(false),
        Some(_) => return Err(ApiError::invalid_field("format", "must be json or csv")),
        None => {}
    }
    Ok(headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|m| m.split(';').next())
        .any(|m| m.trim().eq_ignore_ascii_case("text/csv")))
}

/// A text cell: quoted when it holds a separator, quote or line break
/// (RFC 4180), and with a leading `'` when a spreadsheet would read it as a
/// formula (user-supplied text must not run in the operator's spreadsheet).
pub fn cell(text: &str) -> String {
    let formula = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let text = if formula { format!("'{text}") } else { text.to_string() };
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text }
}

/// An optional text cell (empty when absent).
pub fn opt_cell(text: Option<&str>) -> String {
    text.map(cell).unwrap_or_default()
}

fn line(cells: impl IntoIterator<Item = String>) -> String {
    let mut out = cells.into_iter().collect::<Vec<_>>().join(",");
    out.push_str("\r\n");
    out
}

/// A 200 answer streaming `rows` as CSV with a header line; `filename` is
/// what a browser saves it as.
pub fn csv_response<R: CsvRow + Send + 'static>(filename: &str, rows: Vec<R>) -> Response {
    let header = R::header().iter().map(|h| h.to_string()).collect();
    csv_table(filename, header, rows.into_iter().map(|r| r.cells()))
}

/// The same for a table whose columns are known only at run time: a header
/// and the cells of each row, in order.
pub fn csv_table<I>(filename: &str, header: Vec<String>, rows: I) -> Response
where
    I: Iterator<Item = Vec<String>> + Send + 'static,
{
    let mut rows = rows;
    let mut first = Some(line(header));
    let chunks = std::iter::from_fn(move || {
        let mut chunk = first.take().unwrap_or_default();
        for row in rows.by_ref().take(ROWS_PER_CHUNK) {
            chunk.push_str(&line(row));
        }
        (!chunk.is_empty()).then(|| Ok::<_, Infallible>(Bytes::from(chunk)))
    });
    let mut response = Response::new(Body::from_stream(futures_util::stream::iter(chunks)));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CSV_CONTENT_TYPE));
    let name: String = filename.chars().filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c)).collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Row(&'static str, i64);
    impl CsvRow for Row {
        fn header() -> &'static [&'static str] {
            &["name", "value"]
        }
        fn cells(&self) -> Vec<String> {
            vec![cell(self.0), self.1.to_string()]
        }
    }

    #[test]
    fn cells_are_quoted_and_formulas_defused() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(cell("line\nbreak"), "\"line\nbreak\"");
    }

    #[test]
    fn accept_or_format_choose_csv() {
        let mut h = HeaderMap::new();
        assert!(!wants_csv(&h, None).unwrap());
        h.insert(header::ACCEPT, HeaderValue::from_static("text/csv;q=0.9, application/json"));
        assert!(wants_csv(&h, None).unwrap());
        assert!(!wants_csv(&h, Some("json")).unwrap());
        assert!(wants_csv(&HeaderMap::new(), Some("csv")).unwrap());
        assert!(wants_csv(&h, Some("xml")).is_err());
    }

    #[tokio::test]
    async fn the_body_is_a_header_and_one_line_per_row() {
        let rows: Vec<Row> = (0..600).map(|i| Row("x,y", i)).collect();
        let response = csv_response("rows.csv", rows);
        assert_eq!(response.headers()[header::CONTENT_TYPE], CSV_CONTENT_TYPE);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let text = std::str::from_utf8(&body).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0], "name,value");
        assert_eq!(lines[1], "\"x,y\",0");
        assert_eq!(lines[600], "\"x,y\",599");
        assert_eq!(lines.len(), 602, "a final line break");
    }
}
