import NIOCore
import Testing
import TestSupport

@testable import OctopusRPC

@Suite struct FrameTests {
    func encoded(_ frame: Frame) -> ByteBuffer {
        var buffer = ByteBuffer()
        frame.write(to: &buffer)
        return buffer
    }

    @Test func aFrameRoundTripsAndTheHeaderIsTheDocumentedLayout() throws {
        let frame = Frame(
            kind: .request, flags: .targeted, id: 0x0102_0304_0506_0708, timeoutMilliseconds: 5000,
            head: ByteBuffer(string: "b1\0add"), body: ByteBuffer(string: #"{"a":1,"b":2}"#))
        var buffer = encoded(frame)
        #expect(buffer.readableBytes == 28 + 6 + 13)
        #expect(Array(buffer.readableBytesView.prefix(28)) == [
            0x4F, 0x43, 1, 1, 0, 4, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0x13, 0x88, 0, 0, 0, 6, 0, 0, 0, 13,
        ])
        let decoded = try FrameDecoder().next(from: &buffer)
        #expect(decoded == frame)
        #expect(buffer.readableBytes == 0)
    }

    @Test func partialInputWaitsAndConsumesNothing() throws {
        let whole = encoded(Frame(kind: .response, id: 9, body: ByteBuffer(string: "42")))
        for cut in 0..<whole.readableBytes {
            var part = whole.getSlice(at: 0, length: cut)!
            #expect(try FrameDecoder().next(from: &part) == nil)
            #expect(part.readableBytes == cut)
        }
    }

    @Test func twoFramesInOneReadAreBothDecoded() throws {
        var buffer = encoded(Frame(kind: .heartbeat, id: 1))
        buffer.writeImmutableBuffer(encoded(Frame(kind: .oneWay, id: 0, head: ByteBuffer(string: "n"))))
        let decoder = FrameDecoder()
        #expect(try decoder.next(from: &buffer)?.kind == .heartbeat)
        #expect(try decoder.next(from: &buffer)?.kind == .oneWay)
        #expect(try decoder.next(from: &buffer) == nil)
    }

    func reason(_ bytes: [UInt8], limit: Int = Frame.defaultMaxFrameSize) -> FrameError.Reason? {
        var buffer = ByteBuffer(bytes: bytes)
        do {
            _ = try FrameDecoder(maxFrameSize: limit).next(from: &buffer)
            return nil
        } catch {
            return error.reason
        }
    }

    @Test func badHeadersAreRejectedWithTheirReason() {
        var good = Array(encoded(Frame(kind: .request, id: 1, head: ByteBuffer(string: "x"))).readableBytesView)
        #expect(reason(good) == nil)
        good[0] = 0x50
        #expect(reason(good) == .badMagic(0x5043))
        #expect(reason([0x12, 0x34]) == .badMagic(0x1234), "a wrong magic is seen before a whole header arrives")
        good[0] = 0x4F
        good[2] = 2
        #expect(reason(good) == .unsupportedVersion(2))
        good[2] = 1
        good[3] = 99
        #expect(reason(good) == .unknownKind(99))
        good[3] = 1
        good[5] = 0x80
        #expect(reason(good) == .unknownFlags(0x80))
        good[5] = 0
        good[7] = 1
        #expect(reason(good) == .reservedNotZero(1))
    }

    @Test func aLengthOverTheLimitIsRejectedFromTheHeaderAlone() {
        // A header that claims 4 GiB of body: refused before any of it is waited for or allocated.
        var header = ByteBuffer()
        Frame.writeHeader(
            kind: .request, flags: [], id: 1, timeoutMilliseconds: 0, headLength: 1, bodyLength: Int(UInt32.max),
            to: &header)
        #expect(reason(Array(header.readableBytesView)) == .tooLarge(size: 28 + 1 + UInt64(UInt32.max), limit: Frame.defaultMaxFrameSize))
        let small = Array(encoded(Frame(kind: .request, id: 1, head: ByteBuffer(string: "x"), body: ByteBuffer(repeating: 0, count: 100))).readableBytesView)
        #expect(reason(small, limit: 128) == .tooLarge(size: 129, limit: 128))
        #expect(reason(small, limit: 129) == nil)
        var longHead = ByteBuffer()
        Frame.writeHeader(kind: .oneWay, flags: [], id: 0, timeoutMilliseconds: 0, headLength: 5000, bodyLength: 0, to: &longHead)
        #expect(reason(Array(longHead.readableBytesView)) == .headTooLong(5000))
    }

    /// 1,000,000 inputs, random and mutated frames, in small and large pieces: the decoder never crashes, never
    /// returns a frame over the limit, and consumes nothing when it asks for more. Deterministic (fixed seed).
    @Test func fuzzTheDecoderWithAMillionInputs() async {
        let (frames, errors) = await onThread { Self.fuzz(inputs: 1_000_000) }
        #expect(frames > 100_000)
        #expect(errors > 100_000)
    }

    static func fuzz(inputs: Int) -> (frames: Int, errors: Int) {
        func encoded(_ frame: Frame) -> ByteBuffer {
            var buffer = ByteBuffer()
            frame.write(to: &buffer)
            return buffer
        }
        var random = SplitMix(seed: 0x5EED)
        let limit = 512
        let decoder = FrameDecoder(maxFrameSize: limit)
        let seeds: [[UInt8]] = [
            Array(encoded(Frame(kind: .request, id: 7, timeoutMilliseconds: 100, head: ByteBuffer(string: "add"), body: ByteBuffer(string: #"{"a":1,"b":2}"#))).readableBytesView),
            Array(encoded(Frame(kind: .response, flags: .error, id: 7, body: ByteBuffer(string: #"{"code":30001,"message":"m"}"#))).readableBytesView),
            Array(encoded(Frame(kind: .heartbeat, flags: .pong, id: 1)).readableBytesView),
            Array(encoded(Frame(kind: .handshake, id: 0, body: ByteBuffer(string: #"{"stage":"bind"}"#))).readableBytesView),
        ]
        var frames = 0
        var errors = 0
        for i in 0..<inputs {
            var bytes: [UInt8]
            if i % 2 == 0 {
                bytes = (0..<Int(random.next() % 80)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                if i % 4 == 0, bytes.count >= 3 { bytes[0] = 0x4F; bytes[1] = 0x43; bytes[2] = 1 }
            } else {
                bytes = seeds[i % seeds.count] + seeds[(i / 2) % seeds.count]
                for _ in 0..<(1 + Int(random.next() % 4)) {
                    let at = Int(random.next() % UInt64(bytes.count))
                    bytes[at] = UInt8(truncatingIfNeeded: random.next())
                }
                if random.next() % 3 == 0 { bytes.removeLast(Int(random.next() % UInt64(bytes.count))) }
            }
            var buffer = ByteBuffer(bytes: bytes)
            while true {
                let before = buffer.readerIndex
                do {
                    guard let frame = try decoder.next(from: &buffer) else {
                        if buffer.readerIndex != before { Issue.record("consumed bytes without a frame at input \(i)") }
                        break
                    }
                    frames += 1
                    if frame.encodedSize > limit { Issue.record("a frame over the limit at input \(i)") }
                } catch {
                    errors += 1
                    break
                }
            }
        }
        return (frames, errors)
    }
}

/// A small deterministic generator for the fuzz test.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct HMACTests {
    @Test func sha256MatchesTheFIPSVectors() {
        #expect(Digests.sha256([]).hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Digests.sha256(Array("abc".utf8)).hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            Digests.sha256(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)).hex
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(
            Digests.sha256([UInt8](repeating: 0x61, count: 1_000_000)).hex
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func hmacMatchesRFC4231() {
        #expect(
            Digests.hmacSHA256(key: [UInt8](repeating: 0x0b, count: 20), message: Array("Hi There".utf8)).hex
                == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        #expect(
            Digests.hmacSHA256(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8)).hex
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        #expect(
            Digests.hmacSHA256(
                key: [UInt8](repeating: 0xaa, count: 131),
                message: Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8)
            ).hex == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
    }
}
