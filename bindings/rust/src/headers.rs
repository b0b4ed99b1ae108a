//! An answer's header fields as libbarrage hands them over with
//! `BRG_REQ_HEADERS` (0.4.0): one block, `name: value\n` per field, names in
//! lower case, in the order received.

/// Iterator over the `(name, value)` fields of a header block, in the order
/// received; names are lower case. A line that is not UTF-8 is skipped (the
/// raw block is [`Response::headers_block`](crate::Response::headers_block)).
#[derive(Debug, Clone)]
pub struct Headers<'a> {
    rest: &'a [u8],
}

impl<'a> Headers<'a> {
    pub(crate) fn new(block: &'a [u8]) -> Headers<'a> {
        Headers { rest: block }
    }

    /// The value of the first field called `name` (any case), if any. A name
    /// sent more than once: [`Headers::get_all`].
    pub fn get(self, name: &str) -> Option<&'a str> {
        self.get_all(name).next()
    }

    /// Every value of the fields called `name` (any case), in order.
    pub fn get_all<'n>(self, name: &'n str) -> impl Iterator<Item = &'a str> + 'n
    where
        'a: 'n,
    {
        self.filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }
}

impl<'a> Iterator for Headers<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        while !self.rest.is_empty() {
            let end = self.rest.iter().position(|&b| b == b'\n').unwrap_or(self.rest.len());
            let line = &self.rest[..end];
            self.rest = &self.rest[(end + 1).min(self.rest.len())..];
            let Ok(line) = std::str::from_utf8(line) else { continue };
            if let Some((name, value)) = line.split_once(':') {
                return Some((name, value.trim()));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_in_order_case_insensitive_lookup() {
        let h = Headers::new(b"content-type: application/json\nset-cookie: a=1\nx-v:  two words \nset-cookie: b=2\n");
        let all: Vec<_> = h.clone().collect();
        assert_eq!(
            all,
            [("content-type", "application/json"), ("set-cookie", "a=1"), ("x-v", "two words"), ("set-cookie", "b=2")]
        );
        assert_eq!(h.clone().get("Content-Type"), Some("application/json"));
        assert_eq!(h.clone().get_all("SET-COOKIE").collect::<Vec<_>>(), ["a=1", "b=2"]);
        assert_eq!(h.get("nope"), None);
        assert_eq!(Headers::new(b"").count(), 0);
        assert_eq!(Headers::new(b"bad\xff: x\nok: 1").collect::<Vec<_>>(), [("ok", "1")]);
    }
}
