//! Just enough ONNX (protobuf) to read a model's float initializers: ModelProto.graph (7) ->
//! GraphProto.initializer (5) -> TensorProto { dims (1), data_type (2), float_data (4), name (8),
//! raw_data (9) }. Everything else is skipped by wire type.

use std::collections::HashMap;

/// A float32 tensor read from an ONNX file.
#[derive(Debug, Clone, PartialEq)]
pub struct OnnxTensor {
    pub dims: Vec<usize>,
    pub data: Vec<f32>,
}

const FLOAT: u64 = 1;

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
    Fixed64,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.buf.get(self.pos).ok_or("truncated varint")?;
            self.pos += 1;
            value |= ((byte & 0x7F) as u64) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("varint too long".into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or("field overruns the message")?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn next(&mut self) -> Result<Option<(u64, Field<'a>)>, String> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Field::Fixed64
            }
            2 => {
                let len = self.varint()? as usize;
                Field::Bytes(self.take(len)?)
            }
            5 => Field::Fixed32(u32::from_le_bytes(self.take(4)?.try_into().unwrap())),
            w => return Err(format!("unsupported protobuf wire type {w}")),
        };
        Ok(Some((key >> 3, field)))
    }
}

fn parse_tensor(msg: &[u8]) -> Result<Option<(String, OnnxTensor)>, String> {
    let mut r = Reader::new(msg);
    let (mut dims, mut data_type, mut name, mut raw, mut floats) =
        (Vec::new(), 0u64, String::new(), None, Vec::new());
    while let Some((field, value)) = r.next()? {
        match (field, value) {
            (1, Field::Varint(d)) => dims.push(d as usize),
            (1, Field::Bytes(packed)) => {
                let mut p = Reader::new(packed);
                while p.pos < packed.len() {
                    dims.push(p.varint()? as usize);
                }
            }
            (2, Field::Varint(t)) => data_type = t,
            (4, Field::Fixed32(bits)) => floats.push(f32::from_bits(bits)),
            (4, Field::Bytes(packed)) => {
                floats.extend(
                    packed
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes(c.try_into().unwrap())),
                );
            }
            (8, Field::Bytes(n)) => name = String::from_utf8_lossy(n).into_owned(),
            (9, Field::Bytes(b)) => raw = Some(b),
            (14, Field::Varint(1)) => {
                return Err(format!(
                    "tensor {name:?} keeps its data in an external file"
                ))
            }
            _ => {}
        }
    }
    if data_type != FLOAT {
        return Ok(None);
    }
    let data = match raw {
        Some(b) => {
            if b.len() % 4 != 0 {
                return Err(format!(
                    "tensor {name:?}: raw data of {} bytes is not float32",
                    b.len()
                ));
            }
            b.chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect()
        }
        None => floats,
    };
    let expected: usize = dims.iter().product();
    if data.len() != expected {
        return Err(format!(
            "tensor {name:?}: {} values for dims {dims:?}",
            data.len()
        ));
    }
    Ok(Some((name, OnnxTensor { dims, data })))
}

/// The float32 initializers (weights) of an ONNX model, by name.
pub fn read_initializers(model: &[u8]) -> Result<HashMap<String, OnnxTensor>, String> {
    let mut r = Reader::new(model);
    let mut graph = None;
    while let Some((field, value)) = r.next()? {
        if let (7, Field::Bytes(g)) = (field, value) {
            graph = Some(g);
        }
    }
    let graph = graph.ok_or("not an ONNX model: no graph")?;
    let mut out = HashMap::new();
    let mut g = Reader::new(graph);
    while let Some((field, value)) = g.next()? {
        if let (5, Field::Bytes(t)) = (field, value) {
            if let Some((name, tensor)) = parse_tensor(t)? {
                out.insert(name, tensor);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7F) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn bytes_field(field: u64, data: &[u8], out: &mut Vec<u8>) {
        varint(field << 3 | 2, out);
        varint(data.len() as u64, out);
        out.extend_from_slice(data);
    }

    #[test]
    fn reads_raw_and_packed_float_tensors() {
        let mut t1 = Vec::new();
        varint(1 << 3, &mut t1);
        varint(2, &mut t1);
        varint(1 << 3, &mut t1);
        varint(2, &mut t1);
        varint(2 << 3, &mut t1);
        varint(FLOAT, &mut t1);
        bytes_field(8, b"w", &mut t1);
        let raw: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0]
            .iter()
            .flat_map(|f| f.to_le_bytes())
            .collect();
        bytes_field(9, &raw, &mut t1);
        let mut t2 = Vec::new();
        bytes_field(1, &[3], &mut t2); // packed dims
        varint(2 << 3, &mut t2);
        varint(FLOAT, &mut t2);
        bytes_field(8, b"b", &mut t2);
        let packed: Vec<u8> = [0.5f32, -1.0, 7.0]
            .iter()
            .flat_map(|f| f.to_le_bytes())
            .collect();
        bytes_field(4, &packed, &mut t2);
        let mut int_tensor = Vec::new();
        varint(2 << 3, &mut int_tensor);
        varint(7, &mut int_tensor); // INT64: skipped
        bytes_field(8, b"shape", &mut int_tensor);
        let mut graph = Vec::new();
        bytes_field(5, &t1, &mut graph);
        bytes_field(5, &t2, &mut graph);
        bytes_field(5, &int_tensor, &mut graph);
        let mut model = Vec::new();
        varint(1 << 3, &mut model); // ir_version
        varint(8, &mut model);
        bytes_field(7, &graph, &mut model);
        let m = read_initializers(&model).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(
            m["w"],
            OnnxTensor {
                dims: vec![2, 2],
                data: vec![1.0, 2.0, 3.0, 4.0]
            }
        );
        assert_eq!(
            m["b"],
            OnnxTensor {
                dims: vec![3],
                data: vec![0.5, -1.0, 7.0]
            }
        );
        assert!(read_initializers(b"\x0a\x05ab").is_err());
        assert!(read_initializers(&model[..model.len() - 3]).is_err());
    }
}
