public import NIOCore

/// What a frame is for.
public enum FrameKind: UInt8, Sendable, CaseIterable {
    /// A call: head is the action (or `target\0action` with `.targeted`), body its input; answered by a response.
    case request = 1
    /// The answer to the request with the same id: body is the output, or an `RPCError` with `.error`.
    case response = 2
    /// A message that gets no answer (notices, the messenger); head is its name.
    case oneWay = 3
    /// A liveness probe on an idle connection; answered with `.pong` set.
    case heartbeat = 4
    /// The bind exchange between a master and a branch (always JSON, whatever the codec).
    case handshake = 5
    /// The caller gave up on the request with this id (cancelled or past its deadline).
    case cancel = 6
}

public struct FrameFlags: OptionSet, Sendable, Hashable {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// A response (or handshake) whose body is an `RPCError`.
    public static let error = FrameFlags(rawValue: 1 << 0)
    /// A heartbeat that answers one.
    public static let pong = FrameFlags(rawValue: 1 << 1)
    /// A request whose head is `target\0action`: it must run on that branch.
    public static let targeted = FrameFlags(rawValue: 1 << 2)

    static let known: FrameFlags = [.error, .pong, .targeted]
}

/// One frame: a fixed 28-byte header, a head (the action name) and a body.
///
/// Header, big-endian:
/// ```
///  0  magic "OC" (0x4F 0x43)     2  version (1)     3  kind
///  4  flags (UInt16)             6  reserved, zero
///  8  id (UInt64)
/// 16  timeout in ms (UInt32, 0 = none)
/// 20  head length (UInt32)      24  body length (UInt32)
/// ```
public struct Frame: Sendable, Equatable {
    public static let magic: UInt16 = 0x4F43
    public static let version: UInt8 = 1
    public static let headerSize = 28
    /// Heads carry names; anything longer is malformed.
    public static let maxHeadLength = 4096
    public static let defaultMaxFrameSize = 16 * 1024 * 1024

    public var kind: FrameKind
    public var flags: FrameFlags
    public var id: UInt64
    public var timeoutMilliseconds: UInt32
    public var head: ByteBuffer
    public var body: ByteBuffer

    public init(
        kind: FrameKind, flags: FrameFlags = [], id: UInt64, timeoutMilliseconds: UInt32 = 0,
        head: ByteBuffer = ByteBuffer(), body: ByteBuffer = ByteBuffer()
    ) {
        self.kind = kind
        self.flags = flags
        self.id = id
        self.timeoutMilliseconds = timeoutMilliseconds
        self.head = head
        self.body = body
    }

    public var encodedSize: Int { Frame.headerSize + head.readableBytes + body.readableBytes }

    /// Appends the frame's bytes to `buffer`.
    public func write(to buffer: inout ByteBuffer) {
        Frame.writeHeader(
            kind: kind, flags: flags, id: id, timeoutMilliseconds: timeoutMilliseconds,
            headLength: head.readableBytes, bodyLength: body.readableBytes, to: &buffer)
        buffer.writeImmutableBuffer(head)
        buffer.writeImmutableBuffer(body)
    }

    static func writeHeader(
        kind: FrameKind, flags: FrameFlags, id: UInt64, timeoutMilliseconds: UInt32,
        headLength: Int, bodyLength: Int, to buffer: inout ByteBuffer
    ) {
        let start = buffer.writerIndex
        buffer.reserveCapacity(minimumWritableBytes: headerSize)
        buffer.moveWriterIndex(forwardBy: headerSize)
        setHeader(
            kind: kind, flags: flags, id: id, timeoutMilliseconds: timeoutMilliseconds, headLength: headLength,
            bodyLength: bodyLength, at: start, in: &buffer)
    }

    /// The header's fields, in wire order (the one place that lists them for writing).
    static func setHeader(
        kind: FrameKind, flags: FrameFlags, id: UInt64, timeoutMilliseconds: UInt32,
        headLength: Int, bodyLength: Int, at index: Int, in buffer: inout ByteBuffer
    ) {
        buffer.setMultipleIntegers(
            Frame.magic, Frame.version, kind.rawValue, flags.rawValue, UInt16(0), id, timeoutMilliseconds,
            UInt32(headLength), UInt32(bodyLength), at: index)
    }

    /// The head as text (action or notice name); nil when it is not UTF-8.
    var headString: String? {
        head.getString(at: head.readerIndex, length: head.readableBytes)
    }
}

/// Why a byte stream is not a frame stream. The connection that sent it is closed; nothing else is affected.
public struct FrameError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Reason: Sendable, Equatable {
        case badMagic(UInt16)
        case unsupportedVersion(UInt8)
        case unknownKind(UInt8)
        case unknownFlags(UInt16)
        case reservedNotZero(UInt16)
        case headTooLong(Int)
        case tooLarge(size: UInt64, limit: Int)
        case truncated(Int)
    }

    public var reason: Reason

    public var description: String {
        switch reason {
        case .badMagic(let value):
            "bad magic 0x\(String(value, radix: 16)) (expected 0x4f43)"
        case .unsupportedVersion(let value):
            "unsupported protocol version \(value) (this side speaks \(Frame.version))"
        case .unknownKind(let value):
            "unknown frame kind \(value)"
        case .unknownFlags(let value):
            "unknown flag bits 0x\(String(value, radix: 16))"
        case .reservedNotZero(let value):
            "reserved header field is 0x\(String(value, radix: 16)), not zero"
        case .headTooLong(let length):
            "head of \(length) bytes is longer than \(Frame.maxHeadLength)"
        case .tooLarge(let size, let limit):
            "frame of \(size) bytes is over the limit of \(limit)"
        case .truncated(let count):
            "the stream ended inside a frame (\(count) bytes of it)"
        }
    }

    var rpcError: RPCError {
        switch reason {
        case .tooLarge: RPCError(.frameTooLarge, description)
        case .unsupportedVersion: RPCError(.versionMismatch, description)
        default: RPCError(.malformed, description)
        }
    }
}

/// Cuts frames out of a byte stream. The header is validated, and the total size checked against the limit,
/// before any byte of head or body is waited for or copied, so a lying length never causes an allocation.
public struct FrameDecoder: Sendable {
    public let maxFrameSize: Int

    public init(maxFrameSize: Int = Frame.defaultMaxFrameSize) {
        self.maxFrameSize = maxFrameSize
    }

    /// The next whole frame, or nil when `buffer` does not hold one yet (nothing is consumed then).
    public func next(from buffer: inout ByteBuffer) throws(FrameError) -> Frame? {
        guard
            let (magic, version, kindRaw, flagsRaw, reserved, id, timeout, headLength, bodyLength) =
                buffer.getMultipleIntegers(
                    at: buffer.readerIndex,
                    as: (UInt16, UInt8, UInt8, UInt16, UInt16, UInt64, UInt32, UInt32, UInt32).self)
        else {
            // A partial header: still reject a wrong magic or version as early as the bytes allow.
            if buffer.readableBytes >= 2, let magic = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
                magic != Frame.magic
            {
                throw FrameError(reason: .badMagic(magic))
            }
            return nil
        }
        guard magic == Frame.magic else { throw FrameError(reason: .badMagic(magic)) }
        guard version == Frame.version else { throw FrameError(reason: .unsupportedVersion(version)) }
        guard let kind = FrameKind(rawValue: kindRaw) else { throw FrameError(reason: .unknownKind(kindRaw)) }
        let flags = FrameFlags(rawValue: flagsRaw)
        guard FrameFlags.known.isSuperset(of: flags) else { throw FrameError(reason: .unknownFlags(flagsRaw)) }
        guard reserved == 0 else { throw FrameError(reason: .reservedNotZero(reserved)) }
        guard Int(headLength) <= Frame.maxHeadLength else { throw FrameError(reason: .headTooLong(Int(headLength))) }
        let total = UInt64(Frame.headerSize) + UInt64(headLength) + UInt64(bodyLength)
        guard total <= UInt64(maxFrameSize) else {
            throw FrameError(reason: .tooLarge(size: total, limit: maxFrameSize))
        }
        guard buffer.readableBytes >= Int(total) else { return nil }
        buffer.moveReaderIndex(forwardBy: Frame.headerSize)
        let head = buffer.readSlice(length: Int(headLength))!
        let body = buffer.readSlice(length: Int(bodyLength))!
        return Frame(kind: kind, flags: flags, id: id, timeoutMilliseconds: timeout, head: head, body: body)
    }
}
