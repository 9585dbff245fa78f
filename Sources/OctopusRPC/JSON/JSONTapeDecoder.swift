import Foundation

/// A JSON document parsed into a flat tape of nodes (pre-order; each node knows where its subtree ends), read by a
/// Codable decoder without building dictionaries or copying strings that are not asked for.
struct JSONTape {
    enum Kind: UInt8 {
        case object, array, string, number, `true`, `false`, null
    }

    struct Node {
        var kind: Kind
        /// A string with escapes (it must be unescaped to be read).
        var escaped: Bool
        /// The value's bytes (strings without their quotes).
        var start: Int32
        var end: Int32
        /// The index of the node after this subtree.
        var next: Int32
        /// Members of an object, elements of an array.
        var count: Int32
    }

    var nodes: [Node] = []

    static let maxDepth = 512

    /// Parses `bytes` (one JSON value, whitespace around it allowed).
    static func parse(_ bytes: UnsafeRawBufferPointer) throws -> JSONTape {
        var parser = Parser(bytes: bytes)
        parser.skipWhitespace()
        try parser.value(depth: 0)
        parser.skipWhitespace()
        guard parser.at == bytes.count else { throw parser.error("unexpected bytes after the JSON value") }
        return JSONTape(nodes: parser.nodes)
    }

    private struct Parser {
        let bytes: UnsafeRawBufferPointer
        var at = 0
        var nodes: [Node] = []

        init(bytes: UnsafeRawBufferPointer) {
            self.bytes = bytes
            nodes.reserveCapacity(16)
        }

        func error(_ message: String) -> DecodingError {
            .dataCorrupted(.init(codingPath: [], debugDescription: "invalid JSON at byte \(at): \(message)"))
        }

        mutating func skipWhitespace() {
            while at < bytes.count {
                switch bytes[at] {
                case 0x20, 0x0A, 0x0D, 0x09: at += 1
                default: return
                }
            }
        }

        mutating func value(depth: Int) throws {
            guard depth < JSONTape.maxDepth else { throw error("nested deeper than \(JSONTape.maxDepth)") }
            guard at < bytes.count else { throw error("unexpected end") }
            switch bytes[at] {
            case UInt8(ascii: "{"): try container(object: true, depth: depth)
            case UInt8(ascii: "["): try container(object: false, depth: depth)
            case UInt8(ascii: "\""): try string()
            case UInt8(ascii: "t"): try literal("true", .true)
            case UInt8(ascii: "f"): try literal("false", .false)
            case UInt8(ascii: "n"): try literal("null", .null)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try number()
            default: throw error("unexpected character")
            }
        }

        private mutating func literal(_ text: StaticString, _ kind: Kind) throws {
            let length = text.utf8CodeUnitCount
            guard at + length <= bytes.count,
                memcmp(bytes.baseAddress! + at, text.utf8Start, length) == 0
            else { throw error("unexpected character") }
            nodes.append(Node(kind: kind, escaped: false, start: Int32(at), end: Int32(at + length), next: Int32(nodes.count + 1), count: 0))
            at += length
        }

        private mutating func string() throws {
            at += 1
            let start = at
            var escaped = false
            while true {
                guard at < bytes.count else { throw error("unterminated string") }
                let byte = bytes[at]
                if byte == UInt8(ascii: "\"") { break }
                if byte == UInt8(ascii: "\\") {
                    escaped = true
                    guard at + 1 < bytes.count else { throw error("unterminated string") }
                    switch bytes[at + 1] {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                        UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        at += 2
                    case UInt8(ascii: "u"):
                        guard at + 6 <= bytes.count, (2..<6).allSatisfy({ isHexDigit(bytes[at + $0]) }) else {
                            throw error("a bad \\u escape")
                        }
                        at += 6
                    default:
                        throw error("an unknown escape")
                    }
                    continue
                }
                guard byte >= 0x20 else { throw error("control character in a string") }
                at += 1
            }
            guard at < bytes.count else { throw error("unterminated string") }
            nodes.append(Node(kind: .string, escaped: escaped, start: Int32(start), end: Int32(at), next: Int32(nodes.count + 1), count: 0))
            at += 1
        }

        private func isHexDigit(_ c: UInt8) -> Bool {
            (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || (c | 0x20 >= UInt8(ascii: "a") && c | 0x20 <= UInt8(ascii: "f"))
        }

        private mutating func number() throws {
            let start = at
            func digits() -> Int {
                let from = at
                while at < bytes.count, bytes[at] >= UInt8(ascii: "0"), bytes[at] <= UInt8(ascii: "9") { at += 1 }
                return at - from
            }
            if bytes[at] == UInt8(ascii: "-") { at += 1 }
            let integer = at
            guard digits() > 0 else { throw error("a number without digits") }
            if bytes[integer] == UInt8(ascii: "0"), at - integer > 1 { throw error("a number with a leading zero") }
            if at < bytes.count, bytes[at] == UInt8(ascii: ".") {
                at += 1
                guard digits() > 0 else { throw error("a number without digits after the point") }
            }
            if at < bytes.count, bytes[at] == UInt8(ascii: "e") || bytes[at] == UInt8(ascii: "E") {
                at += 1
                if at < bytes.count, bytes[at] == UInt8(ascii: "+") || bytes[at] == UInt8(ascii: "-") { at += 1 }
                guard digits() > 0 else { throw error("a number without exponent digits") }
            }
            nodes.append(Node(kind: .number, escaped: false, start: Int32(start), end: Int32(at), next: Int32(nodes.count + 1), count: 0))
        }

        private mutating func container(object: Bool, depth: Int) throws {
            let index = nodes.count
            nodes.append(Node(kind: object ? .object : .array, escaped: false, start: Int32(at), end: 0, next: 0, count: 0))
            at += 1
            let close = object ? UInt8(ascii: "}") : UInt8(ascii: "]")
            var count: Int32 = 0
            skipWhitespace()
            if at < bytes.count, bytes[at] == close {
                at += 1
            } else {
                while true {
                    if object {
                        guard at < bytes.count, bytes[at] == UInt8(ascii: "\"") else { throw error("expected a key") }
                        try string()
                        skipWhitespace()
                        guard at < bytes.count, bytes[at] == UInt8(ascii: ":") else { throw error("expected ':'") }
                        at += 1
                        skipWhitespace()
                    }
                    try value(depth: depth + 1)
                    count += 1
                    skipWhitespace()
                    guard at < bytes.count else { throw error("unterminated \(object ? "object" : "array")") }
                    if bytes[at] == UInt8(ascii: ",") {
                        at += 1
                        skipWhitespace()
                        continue
                    }
                    guard bytes[at] == close else { throw error("expected ',' or '\(Character(UnicodeScalar(close)))'") }
                    at += 1
                    break
                }
            }
            nodes[index].end = Int32(at)
            nodes[index].next = Int32(nodes.count)
            nodes[index].count = count
        }
    }
}

/// Reads a tape; `bytes` must stay valid while decoding (the codec decodes inside `withUnsafeReadableBytes`).
final class JSONTapeDecoder: Decoder {
    let bytes: UnsafeRawBufferPointer
    let tape: JSONTape
    let node: Int
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(bytes: UnsafeRawBufferPointer, tape: JSONTape, node: Int, codingPath: [any CodingKey]) {
        self.bytes = bytes
        self.tape = tape
        self.node = node
        self.codingPath = codingPath
    }

    var kind: JSONTape.Kind { tape.nodes[node].kind }

    func typeMismatch<T>(_ type: T.Type, at node: Int, path: @autoclosure () -> [any CodingKey]) -> DecodingError {
        .typeMismatch(
            type, .init(codingPath: path(), debugDescription: "expected \(type), found \(describe(node))"))
    }

    func describe(_ node: Int) -> String {
        switch tape.nodes[node].kind {
        case .object: "an object"
        case .array: "an array"
        case .string: "a string"
        case .number: "the number \(text(node))"
        case .true, .false: "a boolean"
        case .null: "null"
        }
    }

    func text(_ node: Int) -> String {
        let n = tape.nodes[node]
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[Int(n.start)..<Int(n.end)]), as: UTF8.self)
    }

    // MARK: Values

    func decode<T: Decodable>(_ type: T.Type, at node: Int, path: [any CodingKey]) throws -> T {
        if T.self == String.self { return unsafeBitCast(try string(at: node, path: path), to: T.self) }
        if T.self == Int.self { return unsafeBitCast(try integer(Int.self, at: node, path: path), to: T.self) }
        if T.self == Bool.self { return unsafeBitCast(try bool(at: node, path: path), to: T.self) }
        if T.self == Double.self { return unsafeBitCast(try double(at: node, path: path), to: T.self) }
        if T.self == Data.self {
            let text = try string(at: node, path: path)
            guard let data = Data(base64Encoded: text) else {
                throw DecodingError.dataCorrupted(.init(codingPath: path, debugDescription: "not valid base64"))
            }
            return data as! T
        }
        if T.self == URL.self {
            guard let url = URL(string: try string(at: node, path: path)) else {
                throw DecodingError.dataCorrupted(.init(codingPath: path, debugDescription: "not a valid URL"))
            }
            return url as! T
        }
        if T.self == Decimal.self {
            guard tape.nodes[node].kind == .number, let decimal = Decimal(string: text(node)) else {
                throw typeMismatch(Decimal.self, at: node, path: path)
            }
            return decimal as! T
        }
        return try T(from: JSONTapeDecoder(bytes: bytes, tape: tape, node: node, codingPath: path))
    }

    func string(at node: Int, path: @autoclosure () -> [any CodingKey]) throws -> String {
        let n = tape.nodes[node]
        guard n.kind == .string else { throw typeMismatch(String.self, at: node, path: path()) }
        let raw = UnsafeRawBufferPointer(rebasing: bytes[Int(n.start)..<Int(n.end)])
        if !n.escaped { return String(decoding: raw, as: UTF8.self) }
        return try unescape(raw, path: path())
    }

    private func unescape(_ raw: UnsafeRawBufferPointer, path: @autoclosure () -> [any CodingKey]) throws -> String {
        var out = [UInt8]()
        out.reserveCapacity(raw.count)
        var i = 0
        func corrupt(_ message: String) -> DecodingError {
            .dataCorrupted(.init(codingPath: path(), debugDescription: message))
        }
        func hex4(_ at: Int) throws -> UInt32 {
            guard at + 4 <= raw.count else { throw corrupt("a truncated \\u escape") }
            var value: UInt32 = 0
            for k in at..<(at + 4) {
                let c = raw[k]
                let digit: UInt8
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = c - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = c - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = c - UInt8(ascii: "A") + 10
                default: throw corrupt("a bad \\u escape")
                }
                value = value << 4 | UInt32(digit)
            }
            return value
        }
        while i < raw.count {
            let byte = raw[i]
            guard byte == UInt8(ascii: "\\") else {
                out.append(byte)
                i += 1
                continue
            }
            guard i + 1 < raw.count else { throw corrupt("a truncated escape") }
            let c = raw[i + 1]
            i += 2
            switch c {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(c)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4(i)
                i += 4
                if (0xD800..<0xDC00).contains(scalar) {
                    guard i + 6 <= raw.count, raw[i] == UInt8(ascii: "\\"), raw[i + 1] == UInt8(ascii: "u") else {
                        throw corrupt("an unpaired surrogate")
                    }
                    let low = try hex4(i + 2)
                    guard (0xDC00..<0xE000).contains(low) else { throw corrupt("an unpaired surrogate") }
                    i += 6
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00..<0xE000).contains(scalar) {
                    throw corrupt("an unpaired surrogate")
                }
                out.append(contentsOf: String(Character(Unicode.Scalar(scalar)!)).utf8)
            default:
                throw corrupt("an unknown escape \\\(Character(UnicodeScalar(c)))")
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    func bool(at node: Int, path: @autoclosure () -> [any CodingKey]) throws -> Bool {
        switch tape.nodes[node].kind {
        case .true: true
        case .false: false
        default: throw typeMismatch(Bool.self, at: node, path: path())
        }
    }

    func integer<I: FixedWidthInteger>(_ type: I.Type, at node: Int, path: @autoclosure () -> [any CodingKey]) throws -> I {
        let n = tape.nodes[node]
        guard n.kind == .number else { throw typeMismatch(I.self, at: node, path: path()) }
        var i = Int(n.start)
        let end = Int(n.end)
        let negative = bytes[i] == UInt8(ascii: "-")
        if negative { i += 1 }
        var value: I = 0
        var overflow = false
        while i < end {
            let c = bytes[i]
            guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else {
                // A fraction or an exponent: accepted when the value is a whole number in range.
                let double = Double(text(node)) ?? .nan
                guard let exact = I(exactly: double) else {
                    throw DecodingError.dataCorrupted(
                        .init(codingPath: path(), debugDescription: "\(text(node)) does not fit in \(I.self)"))
                }
                return exact
            }
            let digit = I(c - UInt8(ascii: "0"))
            let (times10, o1) = value.multipliedReportingOverflow(by: 10)
            let (next, o2) = negative ? times10.subtractingReportingOverflow(digit) : times10.addingReportingOverflow(digit)
            overflow = overflow || o1 || o2
            value = next
            i += 1
        }
        guard !overflow else {
            throw DecodingError.dataCorrupted(.init(codingPath: path(), debugDescription: "\(text(node)) does not fit in \(I.self)"))
        }
        return value
    }

    func double(at node: Int, path: @autoclosure () -> [any CodingKey]) throws -> Double {
        guard tape.nodes[node].kind == .number, let value = Double(text(node)) else {
            throw typeMismatch(Double.self, at: node, path: path())
        }
        return value
    }

    /// Whether the key bytes of `node` equal `key` (unescaping only when the key has escapes).
    func keyMatches(_ node: Int, _ key: String) -> Bool {
        let n = tape.nodes[node]
        if n.escaped { return (try? string(at: node, path: [])) == key }
        let length = Int(n.end - n.start)
        var key = key
        return key.withUTF8 { utf8 in
            utf8.count == length && memcmp(bytes.baseAddress! + Int(n.start), utf8.baseAddress!, length) == 0
        }
    }

    // MARK: Decoder

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard kind == .object else { throw typeMismatch([String: Any].self, at: node, path: codingPath) }
        return KeyedDecodingContainer(TapeKeyedContainer<Key>(decoder: self, node: node, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard kind == .array else { throw typeMismatch([Any].self, at: node, path: codingPath) }
        return TapeUnkeyedContainer(decoder: self, node: node, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { self }
}

extension JSONTapeDecoder: SingleValueDecodingContainer {
    func decodeNil() -> Bool { kind == .null }
    func decode(_ type: Bool.Type) throws -> Bool { try bool(at: node, path: codingPath) }
    func decode(_ type: String.Type) throws -> String { try string(at: node, path: codingPath) }
    func decode(_ type: Double.Type) throws -> Double { try double(at: node, path: codingPath) }
    func decode(_ type: Float.Type) throws -> Float { Float(try double(at: node, path: codingPath)) }
    func decode(_ type: Int.Type) throws -> Int { try integer(Int.self, at: node, path: codingPath) }
    func decode(_ type: Int8.Type) throws -> Int8 { try integer(Int8.self, at: node, path: codingPath) }
    func decode(_ type: Int16.Type) throws -> Int16 { try integer(Int16.self, at: node, path: codingPath) }
    func decode(_ type: Int32.Type) throws -> Int32 { try integer(Int32.self, at: node, path: codingPath) }
    func decode(_ type: Int64.Type) throws -> Int64 { try integer(Int64.self, at: node, path: codingPath) }
    func decode(_ type: UInt.Type) throws -> UInt { try integer(UInt.self, at: node, path: codingPath) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try integer(UInt8.self, at: node, path: codingPath) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try integer(UInt16.self, at: node, path: codingPath) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try integer(UInt32.self, at: node, path: codingPath) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try integer(UInt64.self, at: node, path: codingPath) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        if kind == .null { throw valueNotFound(T.self, path: codingPath) }
        return try decode(T.self, at: node, path: codingPath)
    }

    func valueNotFound<T>(_ type: T.Type, path: @autoclosure () -> [any CodingKey]) -> DecodingError {
        .valueNotFound(type, .init(codingPath: path(), debugDescription: "expected \(type), found null"))
    }
}

private struct TapeKeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let decoder: JSONTapeDecoder
    let codingPath: [any CodingKey]
    /// The key node of each member, in document order (its value is the next node).
    private let members: [Int32]

    init(decoder: JSONTapeDecoder, node: Int, codingPath: [any CodingKey]) {
        self.decoder = decoder
        self.codingPath = codingPath
        let nodes = decoder.tape.nodes
        var members: [Int32] = []
        members.reserveCapacity(Int(nodes[node].count))
        var i = Int32(node + 1)
        for _ in 0..<nodes[node].count {
            members.append(i)
            i = nodes[Int(i + 1)].next
        }
        self.members = members
    }

    var allKeys: [Key] {
        members.compactMap { (try? decoder.string(at: Int($0), path: [])).flatMap(Key.init(stringValue:)) }
    }

    /// The last member with the key wins, as in Foundation.
    private func find(_ key: Key) -> Int? {
        let name = key.stringValue
        for member in members.reversed() where decoder.keyMatches(Int(member), name) { return Int(member) + 1 }
        return nil
    }

    private func value(_ key: Key) throws -> Int {
        guard let node = find(key) else {
            throw DecodingError.keyNotFound(
                key, .init(codingPath: codingPath, debugDescription: "no value for the key \"\(key.stringValue)\""))
        }
        return node
    }

    private func nonNull<T>(_ key: Key, _ type: T.Type) throws -> Int {
        let node = try value(key)
        if decoder.tape.nodes[node].kind == .null {
            throw decoder.valueNotFound(type, path: codingPath + [key])
        }
        return node
    }

    func contains(_ key: Key) -> Bool { find(key) != nil }
    func decodeNil(forKey key: Key) throws -> Bool { decoder.tape.nodes[try value(key)].kind == .null }

    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool {
        try decoder.bool(at: try nonNull(key, type), path: codingPath + [key])
    }
    func decode(_ type: String.Type, forKey key: Key) throws -> String {
        try decoder.string(at: try nonNull(key, type), path: codingPath + [key])
    }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double {
        try decoder.double(at: try nonNull(key, type), path: codingPath + [key])
    }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float {
        Float(try decoder.double(at: try nonNull(key, type), path: codingPath + [key]))
    }
    // Each integer type calls the decoder with its concrete type: through a helper generic over the integer type
    // (inside this container, generic over Key) the parsing would run unspecialized, several times slower.
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int {
        try decoder.integer(Int.self, at: try nonNull(key, type), path: codingPath + [key])
    }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 {
        try decoder.integer(Int8.self, at: try nonNull(key, type), path: codingPath + [key])
    }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 {
        try decoder.integer(Int16.self, at: try nonNull(key, type), path: codingPath + [key])
    }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 {
        try decoder.integer(Int32.self, at: try nonNull(key, type), path: codingPath + [key])
    }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 {
        try decoder.integer(Int64.self, at: try nonNull(key, type), path: codingPath + [key])
    }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt {
        try decoder.integer(UInt.self, at: try nonNull(key, type), path: codingPath + [key])
    }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 {
        try decoder.integer(UInt8.self, at: try nonNull(key, type), path: codingPath + [key])
    }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 {
        try decoder.integer(UInt16.self, at: try nonNull(key, type), path: codingPath + [key])
    }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 {
        try decoder.integer(UInt32.self, at: try nonNull(key, type), path: codingPath + [key])
    }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 {
        try decoder.integer(UInt64.self, at: try nonNull(key, type), path: codingPath + [key])
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        let node = try value(key)
        let path = codingPath + [key]
        if decoder.tape.nodes[node].kind == .null, !(T.self is any ExpressibleByNilLiteral.Type) {
            throw decoder.valueNotFound(T.self, path: path)
        }
        return try decoder.decode(T.self, at: node, path: path)
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws
        -> KeyedDecodingContainer<NestedKey>
    {
        let sub = JSONTapeDecoder(bytes: decoder.bytes, tape: decoder.tape, node: try value(key), codingPath: codingPath + [key])
        return try sub.container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        let sub = JSONTapeDecoder(bytes: decoder.bytes, tape: decoder.tape, node: try value(key), codingPath: codingPath + [key])
        return try sub.unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder {
        try superDecoder(forKey: Key(stringValue: "super")!)
    }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        JSONTapeDecoder(bytes: decoder.bytes, tape: decoder.tape, node: try value(key), codingPath: codingPath + [key])
    }
}

private struct TapeUnkeyedContainer: UnkeyedDecodingContainer {
    let decoder: JSONTapeDecoder
    let codingPath: [any CodingKey]
    let count: Int?
    private(set) var currentIndex = 0
    private var cursor: Int

    init(decoder: JSONTapeDecoder, node: Int, codingPath: [any CodingKey]) {
        self.decoder = decoder
        self.codingPath = codingPath
        self.count = Int(decoder.tape.nodes[node].count)
        self.cursor = node + 1
    }

    var isAtEnd: Bool { currentIndex >= count! }

    private mutating func next<T>(_ type: T.Type, allowNull: Bool = false) throws -> (Int, [any CodingKey]) {
        let path = codingPath + [IndexKey(intValue: currentIndex)]
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(type, .init(codingPath: path, debugDescription: "the array has no more elements"))
        }
        let node = cursor
        if !allowNull, decoder.tape.nodes[node].kind == .null { throw decoder.valueNotFound(type, path: path) }
        cursor = Int(decoder.tape.nodes[node].next)
        currentIndex += 1
        return (node, path)
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, decoder.tape.nodes[cursor].kind == .null else { return false }
        _ = try next(Never.self, allowNull: true)
        return true
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool { let (n, p) = try next(type); return try decoder.bool(at: n, path: p) }
    mutating func decode(_ type: String.Type) throws -> String { let (n, p) = try next(type); return try decoder.string(at: n, path: p) }
    mutating func decode(_ type: Double.Type) throws -> Double { let (n, p) = try next(type); return try decoder.double(at: n, path: p) }
    mutating func decode(_ type: Float.Type) throws -> Float { let (n, p) = try next(type); return Float(try decoder.double(at: n, path: p)) }
    mutating func decode(_ type: Int.Type) throws -> Int { let (n, p) = try next(type); return try decoder.integer(Int.self, at: n, path: p) }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { let (n, p) = try next(type); return try decoder.integer(Int64.self, at: n, path: p) }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { let (n, p) = try next(type); return try decoder.integer(UInt64.self, at: n, path: p) }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { let (n, p) = try next(type); return try decoder.integer(UInt8.self, at: n, path: p) }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let (node, path) = try next(type, allowNull: T.self is any ExpressibleByNilLiteral.Type)
        return try decoder.decode(T.self, at: node, path: path)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws
        -> KeyedDecodingContainer<NestedKey>
    {
        let (node, path) = try next([String: Any].self)
        return try JSONTapeDecoder(bytes: decoder.bytes, tape: decoder.tape, node: node, codingPath: path).container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let (node, path) = try next([Any].self)
        return try JSONTapeDecoder(bytes: decoder.bytes, tape: decoder.tape, node: node, codingPath: path).unkeyedContainer()
    }

    mutating func superDecoder() throws -> any Decoder {
        let (node, path) = try next(Any.self, allowNull: true)
        return JSONTapeDecoder(bytes: decoder.bytes, tape: decoder.tape, node: node, codingPath: path)
    }
}
