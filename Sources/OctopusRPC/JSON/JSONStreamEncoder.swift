import Foundation

/// A Codable encoder that writes JSON bytes as it goes: no intermediate tree, no `Data`.
///
/// Output is the JSON Foundation's `JSONEncoder` reads (and writes, with its default strategies: `Date` as seconds
/// since 2001, `Data` as base64, `URL` as its absolute string, `Decimal` as a number). Containers must be used in
/// nesting order, as synthesized `Codable` code always does: writing to a container after a sibling or its parent
/// has been written to again is refused with an error (never silently wrong JSON); so is `superEncoder`. Use
/// `FoundationJSONCodec` for such types.
final class JSONStreamEncoder: Encoder {
    private struct Open {
        var id: Int
        var isObject: Bool
        var count: Int
    }

    // The encoder is used by one thread at a time and never hands out its storage: the dynamic exclusivity checks
    // Swift would make on every append (a third of the encoder's time) are turned off for these properties.
    @exclusivity(unchecked) var out = JSONOutput()
    @exclusivity(unchecked) private var stack: [Open] = []
    @exclusivity(unchecked) private var nextID = 0
    @exclusivity(unchecked) private var keys: [any CodingKey] = []
    // The value slot being encoded by the innermost `encode(to:)`.
    @exclusivity(unchecked) private var slotFilled = false
    @exclusivity(unchecked) private var slotContainer: Int?
    /// An error from a non-throwing API (containers, superEncoder), raised when the value is done.
    @exclusivity(unchecked) private var deferredError: (any Error)?

    var codingPath: [any CodingKey] { keys }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init() {}

    deinit { out.deallocate() }

    func encodeTopLevel<T: Encodable>(_ value: T) throws {
        try writeValue(value)
        if let deferredError { throw deferredError }
    }

    // MARK: Values

    func writeValue<T: Encodable>(_ value: T) throws {
        if T.self == String.self { return writeString(unsafeBitCast(value, to: String.self)) }
        if T.self == Int.self { return writeInteger(unsafeBitCast(value, to: Int.self)) }
        if T.self == Bool.self { return writeBool(unsafeBitCast(value, to: Bool.self)) }
        if T.self == Double.self { return try writeDouble(unsafeBitCast(value, to: Double.self)) }
        if T.self == Data.self { return writeString((value as! Data).base64EncodedString()) }
        if T.self == URL.self { return writeString((value as! URL).absoluteString) }
        if T.self == Decimal.self {
            var text = (value as! Decimal).description
            text.withUTF8 { out.append(UnsafeRawBufferPointer($0)) }
            return
        }
        let depth = stack.count
        let (savedFilled, savedContainer) = (slotFilled, slotContainer)
        slotFilled = false
        slotContainer = nil
        defer { (slotFilled, slotContainer) = (savedFilled, savedContainer) }
        try value.encode(to: self)
        if let deferredError { throw deferredError }
        close(downTo: depth)
        if !slotFilled { out.append("{}") }  // as Foundation: a value that wrote nothing
    }

    func writeString(_ string: String) {
        out.append(UInt8(ascii: "\""))
        var string = string
        string.withUTF8 { utf8 in
            var runStart = 0
            for i in 0..<utf8.count {
                let byte = utf8[i]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                if runStart < i { out.append(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: utf8[runStart..<i]))) }
                runStart = i + 1
                switch byte {
                case UInt8(ascii: "\""): out.append(#"\""#)
                case UInt8(ascii: "\\"): out.append(#"\\"#)
                case 0x0A: out.append(#"\n"#)
                case 0x0D: out.append(#"\r"#)
                case 0x09: out.append(#"\t"#)
                default:
                    let hex: StaticString = "0123456789abcdef"
                    out.append(#"\u00"#)
                    out.append(hex.utf8Start[Int(byte >> 4)])
                    out.append(hex.utf8Start[Int(byte & 15)])
                }
            }
            if runStart < utf8.count { out.append(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: utf8[runStart...]))) }
        }
        out.append(UInt8(ascii: "\""))
    }

    func writeInteger<I: FixedWidthInteger>(_ value: I) {
        if value < 0 {
            out.append(UInt8(ascii: "-"))
        }
        out.appendDecimal(UInt64(value.magnitude))
    }

    func writeBool(_ value: Bool) {
        out.append(value ? "true" : "false")
    }

    func writeDouble(_ value: Double) throws {
        guard value.isFinite else {
            throw EncodingError.invalidValue(
                value, .init(codingPath: codingPath, debugDescription: "\(value) is not representable in JSON"))
        }
        if value == value.rounded(.towardZero), abs(value) < 1e15 {
            writeInteger(Int64(value))
        } else {
            var text = value.description
            text.withUTF8 { out.append(UnsafeRawBufferPointer($0)) }
        }
    }

    func writeNull() {
        out.append("null")
    }

    // MARK: Containers

    /// Before a container writes an entry: closes what was opened after it (finished children), adds the comma.
    func beginEntry(in id: Int) throws {
        // Nearly always the innermost container: its entries are written one after another.
        if let last = stack.last, last.id == id {
            if last.count > 0 { out.append(UInt8(ascii: ",")) }
            stack[stack.count - 1].count += 1
            return
        }
        guard let index = stack.lastIndex(where: { $0.id == id }) else {
            throw EncodingError.invalidValue(
                (), .init(codingPath: codingPath, debugDescription: "a container was written to after a sibling or its parent had moved on; Octopus's JSON codec needs containers used in nesting order (FoundationJSONCodec does not)"))
        }
        close(downTo: index + 1)
        if stack[index].count > 0 { out.append(UInt8(ascii: ",")) }
        stack[index].count += 1
    }

    func writeKey(_ key: some CodingKey) {
        writeString(key.stringValue)
        out.append(UInt8(ascii: ":"))
    }

    func open(object: Bool) -> Int {
        out.append(object ? UInt8(ascii: "{") : UInt8(ascii: "["))
        let id = nextID
        nextID += 1
        stack.append(Open(id: id, isObject: object, count: 0))
        return id
    }

    private func close(downTo depth: Int) {
        while stack.count > depth {
            out.append(stack.removeLast().isObject ? UInt8(ascii: "}") : UInt8(ascii: "]"))
        }
    }

    func count(of id: Int) -> Int {
        stack.last(where: { $0.id == id })?.count ?? 0
    }

    func pushKey(_ key: any CodingKey) { keys.append(key) }
    func popKey() { keys.removeLast() }

    func fail(_ message: String) {
        if deferredError == nil {
            deferredError = EncodingError.invalidValue((), .init(codingPath: codingPath, debugDescription: message))
        }
    }

    /// The slot's container: a second request for the same kind returns the same one (as Foundation does).
    private func slotContainer(object: Bool) -> Int {
        if let id = slotContainer, let open = stack.last(where: { $0.id == id }), open.isObject == object {
            return id
        }
        if slotFilled {
            fail("a value asked for a second, different container")
            return -1
        }
        slotFilled = true
        let id = open(object: object)
        slotContainer = id
        return id
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        KeyedEncodingContainer(StreamKeyedContainer<Key>(encoder: self, id: slotContainer(object: true)))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        StreamUnkeyedContainer(encoder: self, id: slotContainer(object: false))
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        StreamSingleValueContainer(encoder: self)
    }

    /// For the single-value container: one value per slot.
    func claimSlot() throws {
        guard !slotFilled else {
            throw EncodingError.invalidValue(
                (), .init(codingPath: codingPath, debugDescription: "a single value was encoded twice"))
        }
        slotFilled = true
    }
}

private struct StreamKeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let encoder: JSONStreamEncoder
    let id: Int
    var codingPath: [any CodingKey] { encoder.codingPath }

    private func entry(_ key: Key) throws {
        try encoder.beginEntry(in: id)
        encoder.writeKey(key)
    }

    mutating func encodeNil(forKey key: Key) throws { try entry(key); encoder.writeNull() }
    mutating func encode(_ value: Bool, forKey key: Key) throws { try entry(key); encoder.writeBool(value) }
    mutating func encode(_ value: String, forKey key: Key) throws { try entry(key); encoder.writeString(value) }
    mutating func encode(_ value: Double, forKey key: Key) throws { try entry(key); try encoder.writeDouble(value) }
    mutating func encode(_ value: Float, forKey key: Key) throws { try entry(key); try encoder.writeDouble(Double(value)) }
    mutating func encode(_ value: Int, forKey key: Key) throws { try entry(key); encoder.writeInteger(value) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { try entry(key); encoder.writeInteger(value) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { try entry(key); encoder.writeInteger(value) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { try entry(key); encoder.writeInteger(value) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { try entry(key); encoder.writeInteger(value) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { try entry(key); encoder.writeInteger(value) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { try entry(key); encoder.writeInteger(value) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { try entry(key); encoder.writeInteger(value) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { try entry(key); encoder.writeInteger(value) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { try entry(key); encoder.writeInteger(value) }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        try entry(key)
        encoder.pushKey(key)
        defer { encoder.popKey() }
        try encoder.writeValue(value)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key)
        -> KeyedEncodingContainer<NestedKey>
    {
        do { try entry(key) } catch { encoder.fail("\(error)") }
        return KeyedEncodingContainer(StreamKeyedContainer<NestedKey>(encoder: encoder, id: encoder.open(object: true)))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        do { try entry(key) } catch { encoder.fail("\(error)") }
        return StreamUnkeyedContainer(encoder: encoder, id: encoder.open(object: false))
    }

    mutating func superEncoder() -> any Encoder {
        encoder.fail("superEncoder is not supported by Octopus's JSON codec (use FoundationJSONCodec)")
        return encoder
    }

    mutating func superEncoder(forKey key: Key) -> any Encoder { superEncoder() }
}

private struct StreamUnkeyedContainer: UnkeyedEncodingContainer {
    let encoder: JSONStreamEncoder
    let id: Int
    var codingPath: [any CodingKey] { encoder.codingPath }
    var count: Int { encoder.count(of: id) }

    mutating func encodeNil() throws { try encoder.beginEntry(in: id); encoder.writeNull() }
    mutating func encode(_ value: Bool) throws { try encoder.beginEntry(in: id); encoder.writeBool(value) }
    mutating func encode(_ value: String) throws { try encoder.beginEntry(in: id); encoder.writeString(value) }
    mutating func encode(_ value: Double) throws { try encoder.beginEntry(in: id); try encoder.writeDouble(value) }
    mutating func encode(_ value: Float) throws { try encoder.beginEntry(in: id); try encoder.writeDouble(Double(value)) }
    mutating func encode(_ value: Int) throws { try encoder.beginEntry(in: id); encoder.writeInteger(value) }
    mutating func encode(_ value: Int64) throws { try encoder.beginEntry(in: id); encoder.writeInteger(value) }
    mutating func encode(_ value: UInt64) throws { try encoder.beginEntry(in: id); encoder.writeInteger(value) }

    mutating func encode<T: Encodable>(_ value: T) throws {
        try encoder.beginEntry(in: id)
        encoder.pushKey(IndexKey(intValue: count - 1))
        defer { encoder.popKey() }
        try encoder.writeValue(value)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type)
        -> KeyedEncodingContainer<NestedKey>
    {
        do { try encoder.beginEntry(in: id) } catch { encoder.fail("\(error)") }
        return KeyedEncodingContainer(StreamKeyedContainer<NestedKey>(encoder: encoder, id: encoder.open(object: true)))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        do { try encoder.beginEntry(in: id) } catch { encoder.fail("\(error)") }
        return StreamUnkeyedContainer(encoder: encoder, id: encoder.open(object: false))
    }

    mutating func superEncoder() -> any Encoder {
        encoder.fail("superEncoder is not supported by Octopus's JSON codec (use FoundationJSONCodec)")
        return encoder
    }
}

private struct StreamSingleValueContainer: SingleValueEncodingContainer {
    let encoder: JSONStreamEncoder
    var codingPath: [any CodingKey] { encoder.codingPath }

    mutating func encodeNil() throws { try encoder.claimSlot(); encoder.writeNull() }
    mutating func encode(_ value: Bool) throws { try encoder.claimSlot(); encoder.writeBool(value) }
    mutating func encode(_ value: String) throws { try encoder.claimSlot(); encoder.writeString(value) }
    mutating func encode(_ value: Double) throws { try encoder.claimSlot(); try encoder.writeDouble(value) }
    mutating func encode(_ value: Float) throws { try encoder.claimSlot(); try encoder.writeDouble(Double(value)) }
    mutating func encode(_ value: Int) throws { try encoder.claimSlot(); encoder.writeInteger(value) }
    mutating func encode(_ value: Int8) throws { try encoder.claimSlot(); encoder.writeInteger(value) }
    mutating func encode(_ value: Int16) throws { try encoder.claimSlot(); encoder.writeInteger(value) }
    mutating func encode(_ value: Int32) throws { try encoder.claimSlot(); encoder.writeInteger(value) }
    mutating func encode(_ value: Int64) throws { try encoder.claimSlot(); encoder.writeInteger(value) }
    mutating func encode(_ value: UInt) throws { try encoder.claimSlot(); encoder.writeInteger(value) }
    mutating func encode(_ value: UInt8) throws { try encoder.claimSlot(); encoder.writeInteger(value) }
    mutating func encode(_ value: UInt16) throws { try encoder.claimSlot(); encoder.writeInteger(value) }
    mutating func encode(_ value: UInt32) throws { try encoder.claimSlot(); encoder.writeInteger(value) }
    mutating func encode(_ value: UInt64) throws { try encoder.claimSlot(); encoder.writeInteger(value) }

    mutating func encode<T: Encodable>(_ value: T) throws {
        try encoder.claimSlot()
        try encoder.writeValue(value)
    }
}

struct IndexKey: CodingKey {
    var stringValue: String { "Index \(intValue ?? 0)" }
    var intValue: Int?
    init(intValue: Int) { self.intValue = intValue }
    init?(stringValue: String) { nil }
}

/// The encoder's output: a growable byte buffer with no checks beyond its capacity (appending to `[UInt8]` or a
/// `ByteBuffer` byte by byte costs several times more). Owned by one encoder, which frees it.
struct JSONOutput {
    private(set) var base: UnsafeMutablePointer<UInt8>
    private(set) var count = 0
    private var capacity = 256

    init() {
        base = .allocate(capacity: capacity)
    }

    func deallocate() { base.deallocate() }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    private mutating func reserve(_ extra: Int) {
        guard count + extra > capacity else { return }
        var newCapacity = capacity * 2
        while newCapacity < count + extra { newCapacity *= 2 }
        let grown = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        grown.update(from: base, count: count)
        base.deallocate()
        base = grown
        capacity = newCapacity
    }

    mutating func append(_ byte: UInt8) {
        reserve(1)
        base[count] = byte
        count += 1
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, bytes.count > 0 else { return }
        reserve(bytes.count)
        (base + count).update(from: source.assumingMemoryBound(to: UInt8.self), count: bytes.count)
        count += bytes.count
    }

    mutating func append(_ text: StaticString) {
        append(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// Decimal digits of `value`.
    mutating func appendDecimal(_ value: UInt64) {
        var value = value
        var digits = 1
        var limit: UInt64 = 10
        while digits < 20, value >= limit {
            digits += 1
            limit = limit &* 10
        }
        reserve(digits)
        var at = count + digits
        repeat {
            at -= 1
            base[at] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: value % 10)
            value /= 10
        } while value != 0
        count += digits
    }
}
