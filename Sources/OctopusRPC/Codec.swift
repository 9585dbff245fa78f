public import NIOCore
import NIOFoundationCompat
import Foundation

/// How inputs and outputs become bodies. Both sides of a connection must use the same codec; the handshake and
/// error bodies are always JSON.
public protocol RPCCodec: Sendable {
    func encode<Value: Encodable>(_ value: Value, into buffer: inout ByteBuffer) throws
    func decode<Value: Decodable>(_ type: Value.Type, from buffer: ByteBuffer) throws -> Value
}

/// The default codec: JSON through Foundation.
public struct JSONCodec: RPCCodec {
    private let encoder: JSONEncoder
    private let decoder: JSONDecoder

    public init() {
        encoder = JSONEncoder()
        decoder = JSONDecoder()
    }

    public func encode<Value: Encodable>(_ value: Value, into buffer: inout ByteBuffer) throws {
        try encoder.encode(value, into: &buffer)
    }

    public func decode<Value: Decodable>(_ type: Value.Type, from buffer: ByteBuffer) throws -> Value {
        try decoder.decode(type, from: buffer)
    }
}

extension RPCCodec {
    func encodeBody<Value: Encodable>(_ value: Value, action: String) throws(RPCError) -> ByteBuffer {
        var buffer = ByteBuffer()
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
