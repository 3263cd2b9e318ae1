//! CSV drops in chunks: a file dropped in `drops/` is never ingested in one
//! invocation. The S3 notification only *splits* it; each chunk is a
//! message on the events queue that the same function ingests on its own.
//!
//! **The split** ([`Scanner`], streamed by `EventsService::ingest_object`):
//! the object is read once as a stream (bytes are scanned, never parsed
//! into records or written anywhere, so memory stays constant and a
//! 100 MB file takes a second or two), which
//! - checks it is UTF-8 and checks its header with the engine's own
//!   reader ([`collect_engine::ingest`]): a file refused as a whole is
//!   refused exactly as before, naming the file and the line or column;
//! - finds the record ends: a line end *outside quotes*, tracked the way
//!   the csv crate reads RFC 4180 quoting (a field that starts with `"` runs
//!   to its closing quote, `""` inside it is a quote), so a quoted value
//!   with a line break never splits a row (JSONL: every `\n` ends a line,
//!   JSON text cannot hold a raw one);
//! - cuts a chunk at the first record end at or after every
//!   [`ChunkSettings::bytes`] bytes or [`ChunkSettings::rows`] records, and
//!   counts physical lines (`\n`, `\r\n` and a lone `\r`, as the engine
//!   counts them), so every chunk carries the file line it starts on.
//!
//! Each chunk ([`DropChunk`]) names the bucket, key, the object's version
//! (or ETag: a chunk never reads a newer upload of the same key), its byte
//! range, its first line and the header, and goes to the events queue
//! (SendMessageBatch, ten to a request). A drop item
//! ([`drop_pk`]/[`DROP_SK`]) records how many chunks there are; each chunk
//! done sets its entry (applied and refused counts) in the item's `chunks`
//! map, so a chunk delivered twice is counted once, and the chunk that
//! completes the map marks the drop `completed_at` (once, by a conditional
//! write) and is counted in the `DropsCompleted` metric.
//!
//! **A chunk** is read with a ranged GetObject and parsed by the engine's
//! reader as the header followed by the chunk's text (the first chunk holds
//! the header itself); the reader's line numbers are shifted by
//! [`DropChunk::line_shift`], so every reject names the file's real line.
//! The rules are the engine's, per chunk: a duplicate id is refused when
//! both rows are in one chunk (see README, "CSV drops in chunks").

use serde::{Deserialize, Serialize};

use super::config::env_opt;
use super::error::ConfigError;

/// The `format` of a chunk message on the events queue.
pub const CHUNK_FORMAT: &str = "collect.drop-chunk/1";

/// The drop item's sort key; its partition key is [`drop_pk`].
pub const DROP_SK: &str = "DROP";

/// The drop item of a drop (`D#<bucket>/<key>@<version>`).
pub fn drop_pk(drop_id: &str) -> String {
    format!("D#{drop_id}")
}

/// Where a chunk's refused rows are written in the bucket, as the
/// `rejects.csv` of `collect ingest` (`file,line,column,value,reason`):
/// `rejects/<key>/<version>/<chunk>.csv`. Outside `drops/`, so writing one
/// never looks like a new drop.
pub fn rejects_key(key: &str, version: &str, chunk: u32) -> String {
    let version: String = version
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("rejects/{key}/{version}/{chunk:05}.csv")
}

/// How big a chunk is: it ends at the first record end at or after
/// `bytes` bytes or `rows` records, whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkSettings {
    /// `DROP_CHUNK_BYTES` (default 4 MiB).
    pub bytes: u64,
    /// `DROP_CHUNK_ROWS` (default 20,000).
    pub rows: u64,
}

impl Default for ChunkSettings {
    fn default() -> Self {
        ChunkSettings {
            bytes: 4 * 1024 * 1024,
            rows: 20_000,
        }
    }
}

impl ChunkSettings {
    /// From `DROP_CHUNK_BYTES` and `DROP_CHUNK_ROWS` (absent: the defaults).
    pub fn from_env() -> Result<ChunkSettings, ConfigError> {
        let d = ChunkSettings::default();
        let read = |name: &'static str, default: u64, min: u32, max: u32| match env_opt(name) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .map(u64::from)
                .ok_or_else(|| ConfigError::not_in_range(name, v, min, max)),
        };
        Ok(ChunkSettings {
            bytes: read("DROP_CHUNK_BYTES", d.bytes, 256, 64 * 1024 * 1024)?,
            rows: read("DROP_CHUNK_ROWS", d.rows, 1, 1_000_000)?,
        })
    }
}

/// How a dropped file is read: CSV (a header, RFC 4180 quoting) or JSON
/// lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Csv,
    Jsonl,
}

/// One chunk of a drop: the body of an events-queue message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DropChunk {
    /// [`CHUNK_FORMAT`].
    pub format: String,
    pub bucket: String,
    pub key: String,
    /// The object's version id (a versioned bucket) …
    #[serde(default)]
    pub version_id: Option<String>,
    /// … or its ETag, so the chunk reads the object that was split.
    #[serde(default)]
    pub etag: Option<String>,
    /// Which chunk (from 0) of how many.
    pub chunk: u32,
    pub chunks: u32,
    /// The byte range `[start, end)`: whole records.
    pub start: u64,
    pub end: u64,
    /// The file line the chunk's first byte is on (1 for the first chunk).
    pub first_line: u64,
    /// The header record as it is in the file, line end included; empty
    /// for the first chunk (which holds it) and for JSON lines.
    pub header: String,
    /// Rows of this chunk whose id a row of an earlier chunk has: refused
    /// as the engine's reader refuses a duplicate (it sees one chunk).
    #[serde(default)]
    pub duplicates: Vec<Duplicate>,
}

/// A row whose id is on an earlier line of the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Duplicate {
    pub line: u64,
    pub first: u64,
    pub id: String,
}

impl DropChunk {
    /// The drop this chunk belongs to: `<bucket>/<key>@<version or ETag>`.
    pub fn drop_id(&self) -> String {
        drop_id(&self.bucket, &self.key, self.version())
    }

    /// The object's version id, or its ETag.
    pub fn version(&self) -> &str {
        self.version_id
            .as_deref()
            .or(self.etag.as_deref())
            .unwrap_or("")
    }

    /// What to add to a line number the engine's reader gives for the
    /// text `header + chunk` to get the file's line.
    pub fn line_shift(&self) -> u64 {
        let header_lines = line_ends(self.header.as_bytes());
        self.first_line
            .saturating_sub(1)
            .saturating_sub(header_lines)
    }

    /// The HTTP range of the chunk (`bytes=start-last`); `None` for an
    /// empty range.
    pub fn range(&self) -> Option<String> {
        (self.end > self.start).then(|| format!("bytes={}-{}", self.start, self.end - 1))
    }
}

/// `<bucket>/<key>@<version>`.
pub fn drop_id(bucket: &str, key: &str, version: &str) -> String {
    format!("{bucket}/{key}@{version}")
}

/// Physical line ends in `text`: `\n`, `\r\n` and a lone `\r` (a `\r` at
/// the very end counts: the header always ends a line).
fn line_ends(text: &[u8]) -> u64 {
    let mut n = 0u64;
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        if b == b'\n' || (b == b'\r' && text.get(i + 1) != Some(&b'\n')) {
            n += 1;
        }
        i += 1;
    }
    n
}

/// Where the scanner is inside a CSV record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: the end of the field, or the first
    /// of `""`.
    QuoteInQuoted,
}

/// A chunk boundary found by the [`Scanner`]: the byte after a record end,
/// and the line the next record starts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    pub offset: u64,
    pub line: u64,
}

/// The most ids of one file kept to find duplicates across chunks (about
/// 150 MB); past it, a duplicate in another chunk is not found.
pub const MAX_TRACKED_IDS: usize = 2_000_000;

/// The ids of a CSV file's rows, to find a row whose id an earlier row has
/// (the engine's rule, across chunks): the values of one column, read with
/// the quoting rules of the scanner.
#[derive(Debug, Clone)]
struct Ids {
    column: &'static str,
    /// The column's index, once the header was read.
    index: Option<usize>,
    header: Vec<String>,
    /// The field being read, its content (when it is kept), whether the
    /// record has begun, and the line it began on.
    field: usize,
    buf: Vec<u8>,
    started: bool,
    record_line: u64,
    id: Option<Vec<u8>>,
    has_id: bool,
    seen: std::collections::HashMap<Box<[u8]>, u64>,
    full: bool,
    duplicates: Vec<Duplicate>,
}

impl Ids {
    fn keeps(&self) -> bool {
        self.index.is_none() || self.index == Some(self.field)
    }

    fn end_field(&mut self) {
        if self.index.is_none() {
            let name = String::from_utf8_lossy(&self.buf);
            self.header
                .push(name.trim_start_matches('\u{feff}').trim().to_string());
        } else if self.index == Some(self.field) {
            // Buffers are reused: no allocation per row but the new ids.
            let id = self.id.get_or_insert_with(Vec::new);
            id.clear();
            id.extend_from_slice(&self.buf);
            self.has_id = true;
        }
        self.buf.clear();
        self.field += 1;
    }

    fn end_record(&mut self) {
        if !self.started {
            return;
        }
        self.end_field();
        if self.index.is_none() {
            let found = self.header.iter().position(|h| h == self.column);
            // No such column: the header check refuses the file.
            self.index = Some(found.unwrap_or(usize::MAX));
        } else if self.field == self.header.len() && self.has_id {
            // Trimmed as the engine's reader trims a value.
            let raw = self.id.as_deref().unwrap_or_default();
            let id = std::str::from_utf8(raw).map(str::trim).unwrap_or_default();
            if !id.is_empty() {
                match self.seen.get(id.as_bytes()) {
                    Some(&first) => self.duplicates.push(Duplicate {
                        line: self.record_line,
                        first,
                        id: id.to_string(),
                    }),
                    None if self.seen.len() < MAX_TRACKED_IDS => {
                        self.seen.insert(id.as_bytes().into(), self.record_line);
                    }
                    None => self.full = true,
                }
            }
        }
        self.has_id = false;
        self.field = 0;
        self.started = false;
    }
}

/// Finds record ends and counts lines in a stream of bytes, fed in pieces
/// of any size (see the module's text).
#[derive(Debug, Clone)]
pub struct Scanner {
    format: Format,
    settings: ChunkSettings,
    state: State,
    /// Bytes fed so far.
    offset: u64,
    /// Line ends seen so far.
    lines: u64,
    pending_cr: bool,
    /// The end of the header record, once seen (CSV).
    header_end: Option<u64>,
    /// Where the current chunk starts, and the records in it so far.
    chunk_start: u64,
    chunk_rows: u64,
    cuts: Vec<Cut>,
    ids: Option<Ids>,
}

impl Scanner {
    pub fn new(format: Format, settings: ChunkSettings) -> Scanner {
        Scanner {
            format,
            settings: ChunkSettings {
                bytes: settings.bytes.max(1),
                rows: settings.rows.max(1),
            },
            state: State::FieldStart,
            offset: 0,
            lines: 0,
            pending_cr: false,
            header_end: None,
            chunk_start: 0,
            chunk_rows: 0,
            cuts: Vec::new(),
            ids: None,
        }
    }

    /// Also finds the rows whose value in `column` (the file's id) an
    /// earlier row has ([`Scanner::duplicates`]). CSV only.
    pub fn with_ids(mut self, column: &'static str) -> Scanner {
        if self.format == Format::Csv {
            self.ids = Some(Ids {
                column,
                index: None,
                header: Vec::new(),
                field: 0,
                buf: Vec::new(),
                started: false,
                record_line: 1,
                id: None,
                has_id: false,
                seen: std::collections::HashMap::new(),
                full: false,
                duplicates: Vec::new(),
            });
        }
        self
    }

    /// The rows whose id an earlier row has, in file order; and whether
    /// [`MAX_TRACKED_IDS`] was reached (later duplicates not found).
    pub fn duplicates(&self) -> (&[Duplicate], bool) {
        match &self.ids {
            Some(ids) => (&ids.duplicates, ids.full),
            None => (&[], false),
        }
    }

    /// CSV or JSON lines.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Bytes fed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The line of the next byte (1 + the line ends seen).
    pub fn line(&self) -> u64 {
        self.lines + u64::from(self.pending_cr) + 1
    }

    /// The end of the header record (CSV), once it was seen.
    pub fn header_end(&self) -> Option<u64> {
        self.header_end
    }

    /// Scans the next piece of the file.
    pub fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.pending_cr {
                self.pending_cr = false;
                if b != b'\n' {
                    self.lines += 1;
                }
            }
            match b {
                b'\r' => self.pending_cr = true,
                b'\n' => self.lines += 1,
                _ => {}
            }
            self.offset += 1;
            let record_end = match self.format {
                Format::Jsonl => b == b'\n',
                Format::Csv => self.csv_byte(b),
            };
            if record_end {
                self.record_end();
            }
        }
    }

    /// The CSV state machine; true at a record's end (a `\n` outside
    /// quotes: a lone `\r` ends a record for the csv reader too, but
    /// chunks are cut after a `\n` only).
    fn csv_byte(&mut self, b: u8) -> bool {
        let quoted = self.state == State::Quoted;
        let (next, end) = match (self.state, b) {
            (State::Quoted, b'"') => (State::QuoteInQuoted, false),
            (State::Quoted, _) => (State::Quoted, false),
            (State::FieldStart, b'"') => (State::Quoted, false),
            (State::QuoteInQuoted, b'"') => (State::Quoted, false),
            (_, b',') => (State::FieldStart, false),
            (_, b'\n') => (State::FieldStart, true),
            (_, b'\r') => (State::FieldStart, false),
            _ => (State::Unquoted, false),
        };
        if let Some(ids) = &mut self.ids {
            let line_end = !quoted && (b == b'\n' || b == b'\r');
            if !line_end && !ids.started {
                ids.started = true;
                ids.record_line = self.lines + 1;
            }
            match (self.state, b) {
                _ if line_end => ids.end_record(),
                (State::Quoted, b'"') | (State::FieldStart, b'"') => {}
                (State::Quoted, _) | (State::QuoteInQuoted, b'"') => {
                    if ids.keeps() {
                        ids.buf.push(b);
                    }
                }
                (_, b',') => ids.end_field(),
                _ => {
                    if ids.keeps() {
                        ids.buf.push(b);
                    }
                }
            }
        }
        self.state = next;
        end
    }

    fn record_end(&mut self) {
        if self.format == Format::Csv && self.header_end.is_none() {
            self.header_end = Some(self.offset);
            return;
        }
        self.chunk_rows += 1;
        if self.offset - self.chunk_start >= self.settings.bytes
            || self.chunk_rows >= self.settings.rows
        {
            self.cuts.push(Cut {
                offset: self.offset,
                line: self.lines + 1,
            });
            self.chunk_start = self.offset;
            self.chunk_rows = 0;
        }
    }

    /// The chunks of the whole file, `(start, end, first line)`, once every
    /// byte was fed: the last ends at the file's end (a file ending
    /// without a line end included).
    pub fn finish(&mut self) -> Vec<(u64, u64, u64)> {
        if let Some(ids) = &mut self.ids {
            ids.end_record();
        }
        let mut out = Vec::with_capacity(self.cuts.len() + 1);
        let (mut start, mut line) = (0u64, 1u64);
        for cut in &self.cuts {
            out.push((start, cut.offset, line));
            (start, line) = (cut.offset, cut.line);
        }
        if start < self.offset || out.is_empty() {
            out.push((start, self.offset, line));
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn chunks(text: &str, format: Format, bytes: u64, piece: usize) -> Vec<(u64, u64, u64)> {
        let mut s = Scanner::new(format, ChunkSettings { bytes, rows: 1000 }).with_ids("id");
        for p in text.as_bytes().chunks(piece) {
            s.feed(p);
        }
        s.finish()
    }

    /// The engine's line of every record start, as `collect ingest` counts.
    fn line_at(text: &str, offset: u64) -> u64 {
        1 + line_ends(&text.as_bytes()[..usize::try_from(offset).unwrap()])
    }

    #[test]
    fn chunks_are_whole_records_with_their_first_line_whatever_the_pieces() {
        let text =
            "id,name\r\nA,\"two\nlines\"\r\nB,\"a \"\"quote\"\"\nand, more\"\nC,c\rD,d\n\nE,e";
        for piece in [1, 2, 3, 7, 1000] {
            for bytes in [1, 5, 12, 40, 1000] {
                let got = chunks(text, Format::Csv, bytes, piece);
                // Contiguous, covering the file.
                assert_eq!(got[0].0, 0);
                assert_eq!(got.last().unwrap().1, text.len() as u64);
                for w in got.windows(2) {
                    assert_eq!(w[0].1, w[1].0);
                }
                for &(start, end, line) in &got {
                    assert_eq!(line, line_at(text, start), "{got:?}");
                    let part = &text[start as usize..end as usize];
                    // No cut inside a quoted value: every chunk holds an
                    // even number of quotes.
                    assert_eq!(part.matches('"').count() % 2, 0, "{part:?}");
                }
            }
        }
        // One record a chunk: the header stays with the first.
        let got = chunks(text, Format::Csv, 1, 4);
        let parts: Vec<&str> = got
            .iter()
            .map(|&(s, e, _)| &text[s as usize..e as usize])
            .collect();
        assert_eq!(parts[0], "id,name\r\nA,\"two\nlines\"\r\n");
        assert_eq!(parts[1], "B,\"a \"\"quote\"\"\nand, more\"\n");
        // A lone `\r` ends a line but not a record here: `C,c\rD,d\n` stays whole.
        assert_eq!(parts[2], "C,c\rD,d\n");
        assert_eq!(got[2].2, 6);
        assert_eq!(got[3].2, 8);
    }

    #[test]
    fn a_row_whose_id_an_earlier_row_has_is_found_wherever_the_chunks_are_cut() {
        let text =
            "\u{feff}name,id\r\n1,A\n2,B\n3,\" A \"\nx,\"y\nz\"\n4\n5,B\r6,\"C\"\"\"\n7,C\"\n,\n";
        for piece in [1, 2, 5, 1000] {
            let mut s =
                Scanner::new(Format::Csv, ChunkSettings { bytes: 3, rows: 1 }).with_ids("id");
            for p in text.as_bytes().chunks(piece) {
                s.feed(p);
            }
            s.finish();
            let (found, full) = s.duplicates();
            assert!(!full);
            let found: Vec<(u64, u64, &str)> = found
                .iter()
                .map(|d| (d.line, d.first, d.id.as_str()))
                .collect();
            // `" A "` is `A` trimmed; the row with one field (line 7) and
            // the empty id are not ids; `5,B` follows a lone `\r`.
            assert_eq!(
                found,
                vec![(4, 2, "A"), (8, 3, "B"), (10, 9, "C\"")],
                "{piece}"
            );
        }
    }

    #[test]
    fn json_lines_are_cut_at_every_line_end_whatever_their_quotes() {
        let text = "{\"a\": \"x\\\"\"}\n{\"b\": 1}\n{\"c\": 2}\n";
        let got = chunks(text, Format::Jsonl, 1, 3);
        assert_eq!(got, vec![(0, 13, 1), (13, 22, 2), (22, 31, 3)]);
    }

    #[test]
    fn a_file_without_rows_is_one_chunk() {
        assert_eq!(chunks("id,name\n", Format::Csv, 1, 2), vec![(0, 8, 1)]);
        assert_eq!(chunks("", Format::Csv, 1, 2), vec![(0, 0, 1)]);
    }

    #[test]
    fn the_line_shift_maps_the_readers_lines_to_the_files() {
        let c = DropChunk {
            format: CHUNK_FORMAT.into(),
            bucket: "b".into(),
            key: "drops/invoices.csv".into(),
            version_id: Some("v1".into()),
            etag: None,
            chunk: 3,
            chunks: 9,
            start: 100,
            end: 200,
            first_line: 40,
            header: "id,name\r\n".into(),
            duplicates: Vec::new(),
        };
        // The reader sees the header on line 1 and the chunk from line 2.
        assert_eq!(2 + c.line_shift(), 40);
        assert_eq!(c.range().as_deref(), Some("bytes=100-199"));
        assert_eq!(c.drop_id(), "b/drops/invoices.csv@v1");
        let first = DropChunk {
            first_line: 1,
            header: String::new(),
            ..c
        };
        assert_eq!(first.line_shift(), 0);
        assert_eq!(
            rejects_key("drops/invoices.csv", "3/Lg.x", 7),
            "rejects/drops/invoices.csv/3_Lg_x/00007.csv"
        );
    }
}
