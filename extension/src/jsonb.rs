//! jsonb values built in place with `pushJsonbValue`, the documented way to build one from C, instead of
//! printing them as text and parsing that again with `jsonb_in` (pgrx's `JsonB`): the decision's `limits`
//! object on every call, the decision a keyed call stores, and the metadata a call writes. Each is the jsonb `jsonb_in`
//! would make of the same text (`#[pg_test]`s compare them as values and as text).

use pgrx::pg_sys;
use pgrx::pg_sys::JsonbIteratorToken::{
    WJB_BEGIN_ARRAY, WJB_BEGIN_OBJECT, WJB_ELEM, WJB_END_ARRAY, WJB_END_OBJECT, WJB_KEY, WJB_VALUE,
};
use serde_json::Value;

/// How many distinct `limits` objects a backend keeps built (one per plan and meter it serves, in practice).
const KEPT_OBJECTS: usize = 32;

/// An object's pairs and its jsonb bytes.
type Built = (Vec<(String, i64)>, Box<[u8]>);

thread_local! {
    /// `int_object`'s recent results, as the flat jsonb bytes (a varlena is position-independent): the same
    /// few objects are built on every call, and building one cost about 1 % of a consume (docs/benchmarks.md).
    static BUILT: std::cell::RefCell<Vec<Built>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// `{"key": number, ...}` as a jsonb datum: serialising to text and parsing it again with `jsonb_in` cost more
/// than the rest of the decision's fields together. An object built before is copied from its bytes.
pub fn int_object(pairs: &[(String, i64)]) -> pg_sys::Datum {
    let copied = BUILT.with(|b| {
        b.borrow()
            .iter()
            .find(|(p, _)| p.as_slice() == pairs)
            .map(|(_, bytes)| copy_varlena(bytes))
    });
    if let Some(datum) = copied {
        return datum;
    }
    let datum = build_int_object(pairs);
    // SAFETY: `datum` points to the varlena JsonbValueToJsonb just made, in the current memory context, whose
    // length varsize_any reads from its header.
    let bytes: Box<[u8]> = unsafe {
        let ptr = datum.cast_mut_ptr::<pg_sys::varlena>();
        std::slice::from_raw_parts(ptr as *const u8, pgrx::varsize_any(ptr)).into()
    };
    BUILT.with(|b| {
        let mut b = b.borrow_mut();
        if b.len() >= KEPT_OBJECTS {
            b.clear();
        }
        b.push((pairs.to_vec(), bytes));
    });
    datum
}

/// A copy of a kept varlena in memory of the current context (palloc raises out of memory).
fn copy_varlena(bytes: &[u8]) -> pg_sys::Datum {
    // SAFETY: palloc returns `len` writable bytes (suitably aligned for any varlena) or raises an error.
    unsafe {
        let ptr = pg_sys::palloc(bytes.len()) as *mut u8;
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr, bytes.len());
        pg_sys::Datum::from(ptr)
    }
}

fn build_int_object(pairs: &[(String, i64)]) -> pg_sys::Datum {
    // SAFETY: push the object's tokens, then flatten the result. The key strings are only read until
    // JsonbValueToJsonb copies them, and the borrowed `&str`s outlive it. Keys are sorted and de-duplicated (the
    // last one wins, as jsonb_in does) by pushJsonbValue at WJB_END_OBJECT.
    unsafe {
        let mut state: *mut pg_sys::JsonbParseState = std::ptr::null_mut();
        pg_sys::pushJsonbValue(&mut state, WJB_BEGIN_OBJECT, std::ptr::null_mut());
        for (key, value) in pairs {
            pg_sys::pushJsonbValue(&mut state, WJB_KEY, &mut string(key));
            pg_sys::pushJsonbValue(&mut state, WJB_VALUE, &mut integer(*value));
        }
        let object = pg_sys::pushJsonbValue(&mut state, WJB_END_OBJECT, std::ptr::null_mut());
        pg_sys::Datum::from(pg_sys::JsonbValueToJsonb(object))
    }
}

/// A JSON object as a jsonb statement argument (the decision a keyed call stores: printing and parsing it cost
/// ~4 % of a keyed consume). A value this does not build (not an object, a number that is not a 64-bit
/// integer, a string with a NUL, which jsonb cannot hold) takes pgrx's way.
pub fn jsonb_arg<'a>(value: &Value) -> pgrx::datum::DatumWithOid<'a> {
    if !value.is_object() || !buildable(value) {
        return pgrx::JsonB(value.clone()).into();
    }
    // SAFETY: every string pushed is borrowed from `value`, which outlives JsonbValueToJsonb, the copy. The
    // datum is a jsonb, so JSONBOID is its type.
    unsafe {
        let mut state: *mut pg_sys::JsonbParseState = std::ptr::null_mut();
        let object = push(&mut state, value, WJB_VALUE);
        let datum = pg_sys::Datum::from(pg_sys::JsonbValueToJsonb(object));
        pgrx::datum::DatumWithOid::new(datum, pg_sys::JSONBOID)
    }
}

/// An optional JSON object as a jsonb statement argument, built as `jsonb_arg` builds one (SQL NULL for None): the
/// metadata a call writes to the ledger and to its idempotency key.
pub fn optional_arg<'a>(value: Option<&Value>) -> pgrx::datum::DatumWithOid<'a> {
    value.map_or_else(
        || pgrx::datum::DatumWithOid::null_oid(pg_sys::JSONBOID),
        jsonb_arg,
    )
}

/// Whether `push` builds the value as `jsonb_in` would parse its text.
pub(crate) fn buildable(value: &Value) -> bool {
    let text = |s: &str| !s.contains('\0') && s.len() < (1 << 20);
    match value {
        Value::Null | Value::Bool(_) => true,
        Value::Number(n) => n.as_i64().is_some(),
        Value::String(s) => text(s),
        Value::Array(items) => items.iter().all(buildable),
        Value::Object(map) => map.iter().all(|(k, v)| text(k) && buildable(v)),
    }
}

/// Pushes a `buildable` value (a scalar as `token`: WJB_VALUE after a key, WJB_ELEM in an array) and returns
/// what pushJsonbValue returned: the finished value once the outermost container closes.
///
/// # Safety
/// `state` is null or a parse state begun by the caller; `value` outlives the jsonb made from it.
unsafe fn push(
    state: &mut *mut pg_sys::JsonbParseState,
    value: &Value,
    token: pg_sys::JsonbIteratorToken::Type,
) -> *mut pg_sys::JsonbValue {
    // SAFETY: see the function; pushJsonbValue only reads the values pushed, during the call.
    unsafe {
        match value {
            Value::Object(map) => {
                pg_sys::pushJsonbValue(state, WJB_BEGIN_OBJECT, std::ptr::null_mut());
                for (k, v) in map {
                    pg_sys::pushJsonbValue(state, WJB_KEY, &mut string(k));
                    push(state, v, WJB_VALUE);
                }
                pg_sys::pushJsonbValue(state, WJB_END_OBJECT, std::ptr::null_mut())
            }
            Value::Array(items) => {
                pg_sys::pushJsonbValue(state, WJB_BEGIN_ARRAY, std::ptr::null_mut());
                for v in items {
                    push(state, v, WJB_ELEM);
                }
                pg_sys::pushJsonbValue(state, WJB_END_ARRAY, std::ptr::null_mut())
            }
            Value::String(s) => pg_sys::pushJsonbValue(state, token, &mut string(s)),
            // buildable: every number here is a 64-bit integer.
            Value::Number(n) => {
                pg_sys::pushJsonbValue(state, token, &mut integer(n.as_i64().unwrap_or_default()))
            }
            Value::Bool(b) => {
                let mut v = scalar(pg_sys::jbvType::jbvBool);
                v.val.boolean = *b;
                pg_sys::pushJsonbValue(state, token, &mut v)
            }
            Value::Null => {
                pg_sys::pushJsonbValue(state, token, &mut scalar(pg_sys::jbvType::jbvNull))
            }
        }
    }
}

/// A zeroed JsonbValue of type `kind`.
fn scalar(kind: pg_sys::jbvType::Type) -> pg_sys::JsonbValue {
    // SAFETY: JsonbValue is a plain C struct (a tag and a union) for which all zeroes is a valid value.
    let mut v: pg_sys::JsonbValue = unsafe { std::mem::zeroed() };
    v.type_ = kind;
    v
}

/// A jsonb string that borrows `s` (jsonb strings carry their length: no terminating NUL).
fn string(s: &str) -> pg_sys::JsonbValue {
    let mut v = scalar(pg_sys::jbvType::jbvString);
    v.val.string.len = s.len() as i32;
    v.val.string.val = s.as_ptr() as *mut std::ffi::c_char;
    v
}

/// A jsonb number.
fn integer(i: i64) -> pg_sys::JsonbValue {
    let mut v = scalar(pg_sys::jbvType::jbvNumeric);
    // SAFETY: int64_to_numeric allocates the numeric in the current memory context; it cannot fail.
    v.val.numeric = unsafe { pg_sys::int64_to_numeric(i) };
    v
}
