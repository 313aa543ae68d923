//! A minimal pickle reader for the python-format CIFAR batches.
//!
//! The batches are dicts of lists, strings and one numpy array, written by Python 2's cPickle
//! (protocol 2) for the official archive; files re-saved by Python 3 use later protocols. This
//! reader runs the pickle machine for the opcodes those files use and records calls
//! (`numpy...._reconstruct`, `numpy.dtype`, ...) as plain values instead of running any code,
//! so the caller can recognise the array.
//!
//! Not serde-pickle: it resolves only the globals it knows, and the pixels are a numpy array
//! built through `numpy.core.multiarray._reconstruct`; by default it refuses such a file, and
//! with `DeOptions::replace_unresolved_globals` it reads the array as `None` (its own
//! `unresolvable_global` test), so the pixels would be lost either way.

use std::collections::HashMap;
use std::rc::Rc;

/// A key and its value in a dict.
pub(crate) type Entry = (Rc<Value>, Rc<Value>);

/// What APPEND, APPENDS and ADDITEMS add to a list, or SETITEM and SETITEMS to a dict.
enum Additions {
    Items(Vec<Rc<Value>>),
    Entries(Vec<Entry>),
}

/// A value built by the pickle machine.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// A float; no CIFAR field needs its value.
    Float,
    /// A unicode string (Python 3 `str`).
    Str(String),
    /// A byte string (Python 2 `str`, Python 3 `bytes` or `bytearray`).
    Bytes(Rc<[u8]>),
    List(Vec<Rc<Value>>),
    Tuple(Vec<Rc<Value>>),
    Dict(Vec<Entry>),
    /// A class or function named by module and name.
    Global {
        module: String,
        name: String,
    },
    /// `callable(*args)`, with the state a later BUILD set on it.
    Call {
        callable: Rc<Value>,
        args: Rc<Value>,
        state: Option<Rc<Value>>,
    },
}

impl Value {
    /// The text of a `str` or of a byte string read as latin-1.
    pub(crate) fn as_text(&self) -> Option<String> {
        match self {
            Self::Str(text) => Some(text.clone()),
            Self::Bytes(bytes) => Some(bytes.iter().map(|&b| char::from(b)).collect()),
            _ => None,
        }
    }

    /// The value stored under a string key of a dict.
    pub(crate) fn dict_get(&self, key: &str) -> Option<&Value> {
        match self {
            Self::Dict(entries) => entries
                .iter()
                .find(|(k, _)| k.as_text().as_deref() == Some(key))
                .map(|(_, v)| v.as_ref()),
            _ => None,
        }
    }

    /// The elements of a list or tuple.
    pub(crate) fn items(&self) -> Option<&[Rc<Value>]> {
        match self {
            Self::List(items) | Self::Tuple(items) => Some(items),
            _ => None,
        }
    }

    /// The value as an integer (Python's bools are integers too).
    pub(crate) fn as_int(&self) -> Option<i64> {
        match self {
            Self::Int(value) => Some(*value),
            Self::Bool(value) => Some(i64::from(*value)),
            _ => None,
        }
    }

    /// True for a global with the given name whose module is one of `modules`.
    pub(crate) fn is_global(&self, modules: &[&str], wanted: &str) -> bool {
        matches!(self, Self::Global { module, name } if name == wanted && modules.contains(&module.as_str()))
    }
}

/// Pickle opcodes this reader understands.
mod op {
    pub const MARK: u8 = b'(';
    pub const STOP: u8 = b'.';
    pub const POP: u8 = b'0';
    pub const POP_MARK: u8 = b'1';
    pub const DUP: u8 = b'2';
    pub const BININT: u8 = b'J';
    pub const BININT1: u8 = b'K';
    pub const BININT2: u8 = b'M';
    pub const NONE: u8 = b'N';
    pub const BINFLOAT: u8 = b'G';
    pub const BINSTRING: u8 = b'T';
    pub const SHORT_BINSTRING: u8 = b'U';
    pub const BINUNICODE: u8 = b'X';
    pub const APPEND: u8 = b'a';
    pub const BUILD: u8 = b'b';
    pub const GLOBAL: u8 = b'c';
    pub const DICT: u8 = b'd';
    pub const EMPTY_DICT: u8 = b'}';
    pub const APPENDS: u8 = b'e';
    pub const BINGET: u8 = b'h';
    pub const LONG_BINGET: u8 = b'j';
    pub const LIST: u8 = b'l';
    pub const EMPTY_LIST: u8 = b']';
    pub const BINPUT: u8 = b'q';
    pub const LONG_BINPUT: u8 = b'r';
    pub const REDUCE: u8 = b'R';
    pub const SETITEM: u8 = b's';
    pub const TUPLE: u8 = b't';
    pub const EMPTY_TUPLE: u8 = b')';
    pub const SETITEMS: u8 = b'u';
    pub const PROTO: u8 = 0x80;
    pub const NEWOBJ: u8 = 0x81;
    pub const TUPLE1: u8 = 0x85;
    pub const TUPLE2: u8 = 0x86;
    pub const TUPLE3: u8 = 0x87;
    pub const NEWTRUE: u8 = 0x88;
    pub const NEWFALSE: u8 = 0x89;
    pub const LONG1: u8 = 0x8a;
    pub const BINBYTES: u8 = b'B';
    pub const SHORT_BINBYTES: u8 = b'C';
    pub const SHORT_BINUNICODE: u8 = 0x8c;
    pub const BINUNICODE8: u8 = 0x8d;
    pub const BINBYTES8: u8 = 0x8e;
    pub const EMPTY_SET: u8 = 0x8f;
    pub const ADDITEMS: u8 = 0x90;
    pub const FROZENSET: u8 = 0x91;
    pub const NEWOBJ_EX: u8 = 0x92;
    pub const STACK_GLOBAL: u8 = 0x93;
    pub const MEMOIZE: u8 = 0x94;
    pub const FRAME: u8 = 0x95;
    pub const BYTEARRAY8: u8 = 0x96;
}

/// Runs the pickle machine over `data` and returns the pickled object.
pub(crate) fn parse(data: &[u8]) -> Result<Value, String> {
    Machine::new(data).run()
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Rc<Value>>,
    marks: Vec<usize>,
    memo: HashMap<u32, Rc<Value>>,
}

impl<'a> Machine<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            pos: 0,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
        }
    }

    fn run(mut self) -> Result<Value, String> {
        loop {
            let at = self.pos;
            let code = self.byte()?;
            match code {
                op::STOP => {
                    let top = self.pop()?;
                    return Ok(Rc::try_unwrap(top).unwrap_or_else(|shared| (*shared).clone()));
                }
                op::PROTO => {
                    self.byte()?;
                }
                op::FRAME => {
                    self.take(8)?;
                }
                op::MARK => self.marks.push(self.stack.len()),
                op::POP => {
                    self.pop()?;
                }
                op::POP_MARK => {
                    self.pop_mark()?;
                }
                op::DUP => {
                    let top = self.peek()?.clone();
                    self.stack.push(top);
                }
                op::NONE => self.push(Value::None),
                op::NEWTRUE => self.push(Value::Bool(true)),
                op::NEWFALSE => self.push(Value::Bool(false)),
                op::BININT => {
                    let value = i32::from_le_bytes(self.array()?);
                    self.push(Value::Int(i64::from(value)));
                }
                op::BININT1 => {
                    let value = self.byte()?;
                    self.push(Value::Int(i64::from(value)));
                }
                op::BININT2 => {
                    let value = u16::from_le_bytes(self.array()?);
                    self.push(Value::Int(i64::from(value)));
                }
                op::LONG1 => {
                    let len = usize::from(self.byte()?);
                    let bytes = self.take(len)?;
                    self.push(Value::Int(long_from_le(bytes, at)?));
                }
                op::BINFLOAT => {
                    self.take(8)?;
                    self.push(Value::Float);
                }
                op::SHORT_BINSTRING | op::SHORT_BINBYTES => {
                    let len = usize::from(self.byte()?);
                    let bytes = self.take(len)?;
                    self.push(Value::Bytes(bytes.into()));
                }
                op::BINSTRING | op::BINBYTES => {
                    let len = self.len_u32()?;
                    let bytes = self.take(len)?;
                    self.push(Value::Bytes(bytes.into()));
                }
                op::BINBYTES8 | op::BYTEARRAY8 => {
                    let len = self.len_u64()?;
                    let bytes = self.take(len)?;
                    self.push(Value::Bytes(bytes.into()));
                }
                op::SHORT_BINUNICODE => {
                    let len = usize::from(self.byte()?);
                    self.unicode(len, at)?;
                }
                op::BINUNICODE => {
                    let len = self.len_u32()?;
                    self.unicode(len, at)?;
                }
                op::BINUNICODE8 => {
                    let len = self.len_u64()?;
                    self.unicode(len, at)?;
                }
                op::EMPTY_LIST => self.push(Value::List(Vec::new())),
                op::EMPTY_TUPLE => self.push(Value::Tuple(Vec::new())),
                op::EMPTY_DICT => self.push(Value::Dict(Vec::new())),
                op::EMPTY_SET => self.push(Value::List(Vec::new())),
                op::LIST => {
                    let items = self.pop_mark()?;
                    self.push(Value::List(items));
                }
                op::TUPLE => {
                    let items = self.pop_mark()?;
                    self.push(Value::Tuple(items));
                }
                op::FROZENSET => {
                    let items = self.pop_mark()?;
                    self.push(Value::List(items));
                }
                op::TUPLE1 | op::TUPLE2 | op::TUPLE3 => {
                    let count = usize::from(code - op::TUPLE1 + 1);
                    let items = self.pop_n(count)?;
                    self.push(Value::Tuple(items));
                }
                op::DICT => {
                    let items = self.pop_mark()?;
                    let entries = pairs(items, at)?;
                    self.push(Value::Dict(entries));
                }
                op::APPEND => {
                    let item = self.pop()?;
                    self.extend_top(Additions::Items(vec![item]), at)?;
                }
                op::APPENDS | op::ADDITEMS => {
                    let items = self.pop_mark()?;
                    self.extend_top(Additions::Items(items), at)?;
                }
                op::SETITEM => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    self.extend_top(Additions::Entries(vec![(key, value)]), at)?;
                }
                op::SETITEMS => {
                    let items = self.pop_mark()?;
                    let entries = pairs(items, at)?;
                    self.extend_top(Additions::Entries(entries), at)?;
                }
                op::GLOBAL => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.push(Value::Global { module, name });
                }
                op::STACK_GLOBAL => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module.as_text(), name.as_text()) {
                        (Some(module), Some(name)) => self.push(Value::Global { module, name }),
                        _ => return Err(format!("STACK_GLOBAL at byte {at} needs two strings")),
                    }
                }
                op::REDUCE | op::NEWOBJ => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    self.push(call(callable, args));
                }
                op::NEWOBJ_EX => {
                    self.pop()?;
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    self.push(call(callable, args));
                }
                op::BUILD => {
                    let state = self.pop()?;
                    let target = self.pop()?;
                    let built = match Rc::unwrap_or_clone(target) {
                        Value::Call { callable, args, .. } => Value::Call {
                            callable,
                            args,
                            state: Some(state),
                        },
                        other => other,
                    };
                    self.push(built);
                }
                op::BINPUT => {
                    let key = u32::from(self.byte()?);
                    self.memoize(key)?;
                }
                op::LONG_BINPUT => {
                    let key = u32::from_le_bytes(self.array()?);
                    self.memoize(key)?;
                }
                op::MEMOIZE => {
                    let key = u32::try_from(self.memo.len())
                        .map_err(|_| format!("memo overflow at byte {at}"))?;
                    self.memoize(key)?;
                }
                op::BINGET => {
                    let key = u32::from(self.byte()?);
                    self.recall(key, at)?;
                }
                op::LONG_BINGET => {
                    let key = u32::from_le_bytes(self.array()?);
                    self.recall(key, at)?;
                }
                other => {
                    return Err(format!(
                        "unsupported pickle opcode 0x{other:02x} at byte {at}"
                    ));
                }
            }
        }
    }

    fn byte(&mut self) -> Result<u8, String> {
        let byte = *self
            .data
            .get(self.pos)
            .ok_or_else(|| format!("pickle data ends early at byte {}", self.pos))?;
        self.pos += 1;
        Ok(byte)
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], String> {
        let data: &'a [u8] = self.data;
        let end = self
            .pos
            .checked_add(len)
            .filter(|&end| end <= data.len())
            .ok_or_else(|| {
                format!(
                    "pickle data ends early: {len} bytes wanted at byte {}, the file has {}",
                    self.pos,
                    data.len()
                )
            })?;
        let bytes = &data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let bytes = self.take(N)?;
        let mut array = [0u8; N];
        array.copy_from_slice(bytes);
        Ok(array)
    }

    fn len_u32(&mut self) -> Result<usize, String> {
        let len = u32::from_le_bytes(self.array()?);
        usize::try_from(len).map_err(|_| format!("length {len} does not fit in memory"))
    }

    fn len_u64(&mut self) -> Result<usize, String> {
        let len = u64::from_le_bytes(self.array()?);
        usize::try_from(len).map_err(|_| format!("length {len} does not fit in memory"))
    }

    fn line(&mut self) -> Result<String, String> {
        let start = self.pos;
        let rest = &self.data[start..];
        let len = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| format!("unterminated GLOBAL name at byte {start}"))?;
        let text = String::from_utf8_lossy(&rest[..len]).into_owned();
        self.pos += len + 1;
        Ok(text)
    }

    fn unicode(&mut self, len: usize, at: usize) -> Result<(), String> {
        let bytes = self.take(len)?;
        let text = std::str::from_utf8(bytes)
            .map_err(|_| format!("string at byte {at} is not valid UTF-8"))?;
        self.push(Value::Str(text.to_owned()));
        Ok(())
    }

    fn push(&mut self, value: Value) {
        self.stack.push(Rc::new(value));
    }

    fn peek(&self) -> Result<&Rc<Value>, String> {
        self.stack
            .last()
            .ok_or_else(|| format!("stack underflow at byte {}", self.pos))
    }

    fn pop(&mut self) -> Result<Rc<Value>, String> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(format!("stack underflow at byte {}", self.pos));
        }
        self.stack
            .pop()
            .ok_or_else(|| format!("stack underflow at byte {}", self.pos))
    }

    fn pop_n(&mut self, count: usize) -> Result<Vec<Rc<Value>>, String> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() < floor + count {
            return Err(format!("stack underflow at byte {}", self.pos));
        }
        Ok(self.stack.split_off(self.stack.len() - count))
    }

    fn pop_mark(&mut self) -> Result<Vec<Rc<Value>>, String> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| format!("no MARK before byte {}", self.pos))?;
        Ok(self.stack.split_off(mark.min(self.stack.len())))
    }

    /// Adds to the list or dict on top of the stack, for the opcode at byte `at`.
    fn extend_top(&mut self, additions: Additions, at: usize) -> Result<(), String> {
        let (op, collection) = match additions {
            Additions::Items(_) => ("APPEND", "list"),
            Additions::Entries(_) => ("SETITEM", "dict"),
        };
        let top = self
            .stack
            .last_mut()
            .ok_or_else(|| format!("{op} at byte {at} without a {collection}"))?;
        match (Rc::make_mut(top), additions) {
            (Value::List(list), Additions::Items(items)) => list.extend(items),
            (Value::Dict(dict), Additions::Entries(entries)) => dict.extend(entries),
            _ => {
                return Err(format!(
                    "{op} at byte {at} onto something not a {collection}"
                ));
            }
        }
        Ok(())
    }

    fn memoize(&mut self, key: u32) -> Result<(), String> {
        let top = self.peek()?.clone();
        self.memo.insert(key, top);
        Ok(())
    }

    fn recall(&mut self, key: u32, at: usize) -> Result<(), String> {
        let value = self
            .memo
            .get(&key)
            .ok_or_else(|| format!("memo entry {key} read at byte {at} was never stored"))?
            .clone();
        self.stack.push(value);
        Ok(())
    }
}

/// Python 3 writes `bytes` under protocol 2 as `_codecs.encode(text, "latin1")`; resolve it here
/// so the array data arrives as bytes whatever protocol wrote it.
fn call(callable: Rc<Value>, args: Rc<Value>) -> Value {
    if callable.is_global(&["_codecs"], "encode")
        && let Some([text, encoding]) = args.items()
        && let (Value::Str(text), Some(encoding)) = (text.as_ref(), encoding.as_text())
        && encoding == "latin1"
    {
        let bytes: Option<Vec<u8>> = text.chars().map(|c| u8::try_from(c).ok()).collect();
        if let Some(bytes) = bytes {
            return Value::Bytes(bytes.into());
        }
    }
    Value::Call {
        callable,
        args,
        state: None,
    }
}

fn pairs(items: Vec<Rc<Value>>, at: usize) -> Result<Vec<Entry>, String> {
    if !items.len().is_multiple_of(2) {
        return Err(format!("odd number of dict items at byte {at}"));
    }
    let mut entries = Vec::with_capacity(items.len() / 2);
    let mut items = items.into_iter();
    while let (Some(key), Some(value)) = (items.next(), items.next()) {
        entries.push((key, value));
    }
    Ok(entries)
}

fn long_from_le(bytes: &[u8], at: usize) -> Result<i64, String> {
    if bytes.len() > 8 {
        return Err(format!("integer at byte {at} is wider than 64 bits"));
    }
    let negative = bytes.last().is_some_and(|&b| b & 0x80 != 0);
    let mut buffer = if negative { [0xff; 8] } else { [0; 8] };
    buffer[..bytes.len()].copy_from_slice(bytes);
    Ok(i64::from_le_bytes(buffer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_dict_of_python2_strings_and_ints() {
        // pickle.dumps({b"a": [1, 300, -2]}, protocol=2) in Python 2's spelling.
        let data = b"\x80\x02}q\x00U\x01aq\x01]q\x02(K\x01M,\x01J\xfe\xff\xff\xffes.";
        let value = parse(data).expect("valid pickle");
        let list = value.dict_get("a").and_then(Value::items).expect("a list");
        let ints: Vec<i64> = list.iter().filter_map(|v| v.as_int()).collect();
        assert_eq!(ints, vec![1, 300, -2]);
    }

    #[test]
    fn resolves_python3_protocol2_bytes() {
        // pickle.dumps(b"\x00\xff", protocol=2) in Python 3.
        let data = b"\x80\x02c_codecs\nencode\nq\x00X\x03\x00\x00\x00\x00\xc3\xbfq\x01X\x06\x00\x00\x00latin1q\x02\x86q\x03Rq\x04.";
        match parse(data).expect("valid pickle") {
            Value::Bytes(bytes) => assert_eq!(&bytes[..], &[0x00, 0xff]),
            other => panic!("expected bytes, got {other:?}"),
        }
    }

    #[test]
    fn rejects_truncated_and_unknown_data() {
        assert!(parse(b"\x80\x02}q\x00U\x05ab").is_err());
        assert!(parse(b"\x80\x02\xff.").is_err());
        assert!(parse(b"").is_err());
        assert!(parse(b"0.").is_err());
    }
}
