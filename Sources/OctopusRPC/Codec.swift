public import NIOCore
import NIOFoundationCompat
public import Foundation

/// How inputs and outputs become bodies. Both sides of a connection must use the same codec; the handshake and
/// error bodies are always JSON.
public protocol RPCCodec: Sendable {
    func encode<Value: Encodable>(_ value: Value, into buffer: inout ByteBuffer) throws
    func decode<Value: Decodable>(_ type: Value.Type, from buffer: ByteBuffer) throws -> Value
}

/// The default codec: JSON, written and read straight from the frame's bytes by Octopus's own Codable encoder and
/// decoder (several times faster than Foundation's on small bodies, no `Data` copies). The JSON is the one
/// Foundation's `JSONEncoder` writes with its default strategies (`Date` as seconds since 2001, `Data` as base64),
/// so peers using Foundation interoperate. Types whose `encode(to:)` uses containers out of nesting order, or
/// `superEncoder`, get a clear error: use `FoundationJSONCodec` for them.
public struct JSONCodec: RPCCodec {
    public init() {}

    public func encode<Value: Encodable>(_ value: Value, into buffer: inout ByteBuffer) throws {
        let encoder = JSONStreamEncoder()
        try encoder.encodeTopLevel(value)
        buffer.writeBytes(encoder.out.bytes)
    }

    public func decode<Value: Decodable>(_ type: Value.Type, from buffer: ByteBuffer) throws -> Value {
        try buffer.withUnsafeReadableBytes { raw in
            let tape = try JSONTape.parse(raw)
            return try JSONTapeDecoder(bytes: raw, tape: tape, node: 0, codingPath: []).decode(type, at: 0, path: [])
        }
    }
}

/// JSON through Foundation's `JSONEncoder` and `JSONDecoder` (any Codable type, any strategy they offer).
public struct FoundationJSONCodec: RPCCodec {
    private let encoder: JSONEncoder
    private let decoder: JSONDecoder

    public init(encoder: JSONEncoder = JSONEncoder(), decoder: JSONDecoder = JSONDecoder()) {
        self.encoder = encoder
        self.decoder = decoder
    }

    public func encode<Value: Encodable>(_ value: Value, into buffer: inout ByteBuffer) throws {
        try encoder.encode(value, into: &buffer)
    }

    public func decode<Value: Decodable>(_ type: Value.Type, from buffer: ByteBuffer) throws -> Value {
        try decoder.decode(type, from: buffer)
    }
}

extension RPCCodec {
    /// Encodes a body. `headroom` bytes are left free before it, so that the connection can write the frame's
    /// header (and head) there instead of copying the body into a new buffer.
    func encodeBody<Value: Encodable>(_ value: Value, action: String, headroom: Int = 0) throws(RPCError)
        -> ByteBuffer
    {
        var buffer = ByteBuffer()
        if headroom > 0 {
            buffer.reserveCapacity(headroom + 128)
            buffer.moveWriterIndex(to: headroom)
            buffer.moveReaderIndex(to: headroom)
        }
        do {
            try encode(value, into: &buffer)
        } catch {
            throw RPCError(.codec, "cannot encode \(Value.self): \(error)", action: action)
        }
        return buffer
    }

    func decodeBody<Value: Decodable>(_ type: Value.Type, from buffer: ByteBuffer, action: String) throws(RPCError)
        -> Value
    {
        do {
            return try decode(type, from: buffer)
        } catch {
            throw RPCError(.codec, "cannot decode \(Value.self): \(error)", action: action)
        }
    }
}

/// Control-plane bodies (handshake, errors, notices): JSON whatever the connection's codec.
enum ControlJSON {
    static let codec = JSONCodec()

    static func encode<Value: Encodable>(_ value: Value) -> ByteBuffer {
        var buffer = ByteBuffer()
        // Control values are plain structs of strings and numbers; encoding them cannot fail.
        try! codec.encode(value, into: &buffer)
        return buffer
    }

    static func decode<Value: Decodable>(_ type: Value.Type, from buffer: ByteBuffer) -> Value? {
        try? codec.decode(type, from: buffer)
    }
}
