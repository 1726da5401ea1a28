using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using TorchSharp;

namespace ModelParallel.Checkpointing
{
    /// <summary>
    /// The safetensors format (readable by the Python ecosystem): an 8-byte little-endian header length, a JSON header
    /// naming each tensor's dtype, shape and byte range, then the raw little-endian bytes. Tensors are written in order,
    /// contiguous; readers get one tensor's bytes without reading the others.
    /// </summary>
    internal static class Safetensors
    {
        /// <summary>One tensor's place in a file: its dtype, shape and absolute byte range.</summary>
        public sealed record Entry(string Name, string Dtype, long[] Shape, long Offset, long Length);

        /// <summary>Writes <paramref name="tensors"/> to <paramref name="path"/>, flushed to disk; returns where each landed.</summary>
        public static IReadOnlyList<Entry> Write(string path, IReadOnlyList<(string Name, torch.Tensor Tensor)> tensors, IReadOnlyDictionary<string, string>? metadata = null)
        {
            var header = new Dictionary<string, object>();
            if (metadata is not null) header["__metadata__"] = metadata;
            long cursor = 0;
            var ranges = new List<(string Name, string Dtype, long[] Shape, long Begin, long End)>();
            foreach (var (name, tensor) in tensors)
            {
                long bytes = tensor.numel() * tensor.element_size();
                ranges.Add((name, DtypeName(tensor.dtype), tensor.shape, cursor, cursor + bytes));
                header[name] = new { dtype = DtypeName(tensor.dtype), shape = tensor.shape, data_offsets = new[] { cursor, cursor + bytes } };
                cursor += bytes;
            }
            var json = JsonSerializer.SerializeToUtf8Bytes(header);
            // The data starts on an 8-byte boundary: pad the header with spaces, as the format allows.
            int padded = (json.Length + 7) / 8 * 8;
            var headerBytes = new byte[padded];
            Array.Fill(headerBytes, (byte)' ');
            json.CopyTo(headerBytes, 0);
            using (var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write))
            {
                stream.Write(BitConverter.GetBytes((ulong)padded));
                stream.Write(headerBytes);
                foreach (var (_, tensor) in tensors)
                {
                    // Disposed after the write, not before: a span over a finalized tensor's memory reads freed storage.
                    using var data = tensor.detach().cpu().contiguous();
                    stream.Write(data.bytes);
                }
                stream.Flush(flushToDisk: true);
            }
            long start = 8 + padded;
            return ranges.Select(r => new Entry(r.Name, r.Dtype, r.Shape, start + r.Begin, r.End - r.Begin)).ToList();
        }

        /// <summary>Every entry of a file, from its header (nothing else is read).</summary>
        public static IReadOnlyList<Entry> ReadHeader(string path)
        {
            using var stream = File.OpenRead(path);
            var length = new byte[8];
            if (stream.Read(length, 0, 8) != 8) throw new InvalidDataException($"{path}: shorter than a safetensors header.");
            ulong size = BitConverter.ToUInt64(length);
            if (size > (ulong)stream.Length - 8) throw new InvalidDataException($"{path}: the header claims {size} bytes; the file has {stream.Length}.");
            var json = new byte[size];
            stream.ReadExactly(json);
            using var document = JsonDocument.Parse(json);
            var entries = new List<Entry>();
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (property.Name == "__metadata__") continue;
                var offsets = property.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
                entries.Add(new Entry(property.Name, property.Value.GetProperty("dtype").GetString()!,
                    property.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray(), 8 + (long)size + offsets[0], offsets[1] - offsets[0]));
            }
            return entries;
        }

        /// <summary>Reads <paramref name="length"/> bytes at <paramref name="offset"/>: exactly those, or an error naming the file.</summary>
        public static byte[] ReadRange(string path, long offset, long length)
        {
            var data = new byte[length];
            ReadRange(path, offset, data);
            return data;
        }

        /// <summary>Fills <paramref name="into"/> with the bytes at <paramref name="offset"/>, or fails naming the file.</summary>
        public static void ReadRange(string path, long offset, Span<byte> into)
        {
            using var stream = File.OpenRead(path);
            if (offset + into.Length > stream.Length)
                throw new InvalidDataException($"{path} is truncated: bytes [{offset}, {offset + into.Length}) are needed, the file has {stream.Length}.");
            stream.Position = offset;
            stream.ReadExactly(into);
        }

        /// <summary>A tensor of <paramref name="dtype"/> and <paramref name="shape"/> holding a copy of <paramref name="data"/>.</summary>
        public static torch.Tensor ToTensor(byte[] data, string dtype, long[] shape)
        {
            var tensor = torch.empty(shape, ScalarType(dtype));
            if (tensor.numel() * tensor.element_size() != data.Length)
                throw new InvalidDataException($"{data.Length} bytes do not make a {dtype} tensor of shape [{string.Join(", ", shape)}].");
            data.CopyTo(tensor.bytes);
            return tensor;
        }

        public static string DtypeName(torch.ScalarType type) => type switch
        {
            torch.ScalarType.Float32 => "F32",
            torch.ScalarType.Float64 => "F64",
            torch.ScalarType.Float16 => "F16",
            torch.ScalarType.BFloat16 => "BF16",
            torch.ScalarType.Int64 => "I64",
            torch.ScalarType.Int32 => "I32",
            torch.ScalarType.Int8 => "I8",
            torch.ScalarType.Byte => "U8",
            torch.ScalarType.Bool => "BOOL",
            _ => throw new NotSupportedException($"safetensors has no name for {type}."),
        };

        public static torch.ScalarType ScalarType(string name) => name switch
        {
            "F32" => torch.ScalarType.Float32,
            "F64" => torch.ScalarType.Float64,
            "F16" => torch.ScalarType.Float16,
            "BF16" => torch.ScalarType.BFloat16,
            "I64" => torch.ScalarType.Int64,
            "I32" => torch.ScalarType.Int32,
            "I8" => torch.ScalarType.Int8,
            "U8" => torch.ScalarType.Byte,
            "BOOL" => torch.ScalarType.Bool,
            _ => throw new InvalidDataException($"Unknown safetensors dtype '{name}'."),
        };
    }
}
