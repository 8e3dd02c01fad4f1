//! A tokens file (or stdin): `token` or `user_id<TAB>token` lines, read a page at a time.

use std::path::PathBuf;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader, Lines};

use super::{Candidate, Page};

/// Lines read per page: a page's tokens are all in memory at once, and reading a file is
/// never what holds a send back (BENCHMARKS.md, issue 21).
const LINES_PER_PAGE: usize = 1_000;
/// Bytes a read of the file asks for. Each read of a file is handed to tokio's blocking pool
/// and back: with the default 8 KiB, the hand-offs (a thread woken, the runtime woken) cost
/// more than the reading (BENCHMARKS.md, issue 21).
const READ_SIZE: usize = 64 * 1024;

/// A tokens file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    /// Open or read failed.
    #[error("cannot read the tokens file {}: {source}; give --tokens-file a readable file of `token` or `user_id<TAB>token` lines, or - for stdin", path.display())]
    Unreadable {
        /// The file's path.
        path: PathBuf,
        source: std::io::Error,
    },
}

type Reader = Box<dyn AsyncRead + Unpin + Send>;

/// The file's lines, opened on the first page.
pub(crate) struct FilePages {
    path: PathBuf,
    lines: Option<Lines<BufReader<Reader>>>,
    number: u64,
    done: bool,
}

impl FilePages {
    pub(super) fn new(path: PathBuf) -> Self {
        FilePages { path, lines: None, number: 0, done: false }
    }

    fn unreadable(&self, source: std::io::Error) -> TokenFileError {
        TokenFileError::Unreadable { path: self.path.clone(), source }
    }

    pub(super) async fn next_page(&mut self) -> Result<Option<Page>, TokenFileError> {
        if self.done {
            return Ok(None);
        }
        if self.lines.is_none() {
            let reader: Reader = if self.path.as_os_str() == "-" {
                Box::new(tokio::io::stdin())
            } else {
                Box::new(tokio::fs::File::open(&self.path).await.map_err(|e| self.unreadable(e))?)
            };
            self.lines = Some(BufReader::with_capacity(READ_SIZE, reader).lines());
        }
        let mut page = Page::default();
        while page.candidates.len() < LINES_PER_PAGE {
            let lines = self.lines.as_mut().expect("opened above");
            let Some(line) = lines.next_line().await.map_err(|e| self.unreadable(e))? else {
                self.done = true;
                break;
            };
            self.number += 1;
            let Some((user_id, token)) = parse_line(&line) else { continue };
            let Ok(user_id) = user_id.map(str::parse::<i64>).transpose() else {
                tracing::warn!(line = self.number, file = %self.path.display(), "skipping a line whose user id is not a number");
                page.unusable_lines += 1;
                continue;
            };
            // The token ends the line: a line that is only a token becomes it, not a copy.
            let token = match token.len() == line.len() {
                true => line,
                false => token.to_owned(),
            };
            page.candidates.push(Candidate::read(user_id, Some(token), None));
        }
        Ok(Some(page))
    }
}

impl FilePages {
    /// The lines that could be a token (the progress bar's total), read once before the run;
    /// `None` for stdin, a FIFO or anything else that is not a regular file: those can be read
    /// only once.
    pub(super) async fn count_token_lines(&self) -> Result<Option<u64>, TokenFileError> {
        if self.path.as_os_str() == "-" {
            return Ok(None);
        }
        let regular = tokio::fs::metadata(&self.path).await.is_ok_and(|meta| meta.is_file());
        if !regular {
            return Ok(None);
        }
        let path = self.path.clone();
        let counted = tokio::task::spawn_blocking(move || count_lines(&path)).await;
        let counted = counted.unwrap_or_else(|panic| std::panic::resume_unwind(panic.into_panic()));
        counted.map(Some).map_err(|e| self.unreadable(e))
    }
}

/// Lines of the file that [`parse_line`] would take as a token.
fn count_lines(path: &std::path::Path) -> std::io::Result<u64> {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::with_capacity(1 << 16, std::fs::File::open(path)?);
    let (mut line, mut count) = (Vec::new(), 0);
    while reader.read_until(b'\n', &mut line)? > 0 {
        let text = String::from_utf8_lossy(&line);
        count += u64::from(parse_line(&text).is_some());
        line.clear();
    }
    Ok(count)
}

/// `token` or `user_id<TAB>token`; blank lines and `#` comments are skipped.
fn parse_line(line: &str) -> Option<(Option<&str>, &str)> {
    let trimmed = line.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return None;
    }
    // memchr: `split_once` looked for the tab a byte at a time, 1% of a send's instructions.
    Some(match memchr::memchr(b'\t', line.as_bytes()) {
        Some(tab) => (Some(line[..tab].trim()), &line[tab + 1..]),
        None => (None, line),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_lines_may_carry_a_user_id() {
        assert_eq!(parse_line("42\tTOKEN"), Some((Some("42"), "TOKEN")));
        assert_eq!(parse_line("TOKEN"), Some((None, "TOKEN")));
        assert_eq!(parse_line("# comment"), None);
        assert_eq!(parse_line("   "), None);
    }
}
