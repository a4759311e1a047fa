//! CSV files with a header row, read with the `csv` crate (quoted fields may hold commas, quotes
//! and line breaks — real photo paths do), as the eval datasets and reference-database sources
//! are given. Cells are trimmed, header names lower-cased; short rows read as empty cells; errors
//! name the file and the line.

use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};

/// One data row and the line of the file it starts on (1-based, the header being line 1).
#[derive(Debug, Clone)]
pub struct CsvRecord {
    pub line: u64,
    pub cells: Vec<String>,
}

impl CsvRecord {
    /// The cell of column `column`, empty when the row is shorter.
    pub fn cell(&self, column: usize) -> &str {
        self.cells.get(column).map(String::as_str).unwrap_or("")
    }
}

#[derive(Debug, Clone)]
pub struct CsvTable {
    pub path: PathBuf,
    /// Column names, trimmed and lower-cased; empty for an empty file.
    pub header: Vec<String>,
    /// The data rows, blank lines left out.
    pub records: Vec<CsvRecord>,
}

impl CsvTable {
    pub fn read(path: &Path) -> Result<CsvTable> {
        let bytes = std::fs::read(path).at(path)?;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true) // short rows are empty cells, as optional trailing columns are
            .trim(csv::Trim::All)
            .from_reader(bytes.as_slice());
        let header = reader
            .headers()
            .map_err(|e| csv_error(path, e))?
            .iter()
            .enumerate()
            .map(|(i, h)| {
                // Spreadsheets write a byte-order mark before the first name.
                let h = if i == 0 {
                    h.trim_start_matches('\u{feff}')
                } else {
                    h
                };
                h.trim().to_ascii_lowercase()
            })
            .collect();
        let mut records = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| csv_error(path, e))?;
            if record.iter().all(str::is_empty) {
                continue; // a line of spaces
            }
            records.push(CsvRecord {
                line: record.position().map_or(0, |p| record_line(&bytes, p)),
                cells: record.iter().map(str::to_string).collect(),
            });
        }
        Ok(CsvTable {
            path: path.to_path_buf(),
            header,
            records,
        })
    }

    /// The first column named one of `names` (lower case).
    pub fn column(&self, names: &[&str]) -> Option<usize> {
        self.header.iter().position(|h| names.contains(&h.as_str()))
    }

    /// An error about the file as a whole.
    pub fn error(&self, reason: impl Into<String>) -> Error {
        Error::Csv {
            path: self.path.clone(),
            line: None,
            reason: reason.into(),
        }
    }

    /// An error about one row.
    pub fn row_error(&self, record: &CsvRecord, reason: impl Into<String>) -> Error {
        Error::Csv {
            path: self.path.clone(),
            line: Some(record.line),
            reason: reason.into(),
        }
    }
}

/// The line a record starts on. The csv crate gives the position where reading the record began,
/// before the blank lines it skipped: those are counted here.
fn record_line(bytes: &[u8], position: &csv::Position) -> u64 {
    let mut line = position.line();
    let mut at = position.byte() as usize;
    while let Some(&b) = bytes.get(at) {
        match b {
            b'\n' => line += 1,
            b'\r' if bytes.get(at + 1) != Some(&b'\n') => line += 1,
            b'\r' => {}
            _ => break,
        }
        at += 1;
    }
    line
}

fn csv_error(path: &Path, e: csv::Error) -> Error {
    let line = e.position().map(|p| p.line());
    let reason = match e.kind() {
        csv::ErrorKind::Utf8 { err, .. } => format!("not UTF-8 text ({err})"),
        _ => e.to_string(),
    };
    match e.into_kind() {
        csv::ErrorKind::Io(io) => Error::io(path, io),
        _ => Error::Csv {
            path: path.to_path_buf(),
            line,
            reason,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_fields_keep_commas_and_quotes_and_errors_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        let tricky = r#"Paris, "Sacre-Coeur" 1.jpg"#;
        // A byte-order mark, padded names, a quoted path, a blank line, spaces, a short row.
        std::fs::write(
            &path,
            "\u{feff}Path, Lat \n\"Paris, \"\"Sacre-Coeur\"\" 1.jpg\",48.9\n\n   \nb.jpg\n",
        )
        .unwrap();
        let t = CsvTable::read(&path).unwrap();
        assert_eq!(t.header, ["path", "lat"]);
        assert_eq!(t.records.len(), 2);
        assert_eq!(t.records[0].cell(0), tricky);
        assert_eq!((t.records[0].line, t.records[0].cell(1)), (2, "48.9"));
        assert_eq!((t.records[1].line, t.records[1].cell(1)), (5, ""));
        // Blank lines before a record (CRLF too) count.
        std::fs::write(&path, "path,lat\r\na.jpg,1\r\n\r\n\r\nb.jpg,2\r\n").unwrap();
        let t = CsvTable::read(&path).unwrap();
        let lines: Vec<u64> = t.records.iter().map(|r| r.line).collect();
        assert_eq!(lines, [2, 5]);
        let e = t.row_error(&t.records[1], "bad number").to_string();
        assert_eq!(e, format!("{}: line 5: bad number", path.display()));

        std::fs::write(&path, b"path,lat\na.jpg,\xff\n").unwrap();
        let e = CsvTable::read(&path).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{}: line 2: not UTF-8", path.display())),
            "{e}"
        );
    }
}
