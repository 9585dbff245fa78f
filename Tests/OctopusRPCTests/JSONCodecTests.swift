import Foundation
import NIOCore
import Testing
import TestSupport

@testable import OctopusRPC

/// Octopus's JSON codec against Foundation's: same values both ways, same errors where it matters.
@Suite struct JSONCodecTests {
    enum Shape: Codable, Equatable {
        case circle(radius: Double)
        case rectangle(width: Int, height: Int)
        case empty
    }

    enum Color: String, Codable { case red, green }

    struct Inner: Codable, Equatable {
        var name: String
        var tags: [String]
        var score: Double?
    }

    struct Empty: Codable, Equatable {}

    struct Model: Codable, Equatable {
        var int: Int
        var int8: Int8
        var int64Min: Int64
        var uint64Max: UInt64
        var uint8: UInt8
        var double: Double
        var negative: Double
        var tiny: Double
        var huge: Double
        var float: Float
        var bool: Bool
        var text: String
        var optionalPresent: Int?
        var optionalAbsent: String?
        var inner: Inner
        var inners: [Inner]
        var matrix: [[Int]]
        var optionals: [Int?]
        var byName: [String: Int]
        var byNumber: [Int: String]
        var shapes: [Shape]
        var color: Color
        var date: Date
        var data: Data
        var url: URL
        var decimal: Decimal
        var empty: Empty
        var emptyArray: [Int]
    }

    static let model = Model(
        int: -42, int8: -128, int64Min: .min, uint64Max: .max, uint8: 255, double: 3.25, negative: -0.5,
        tiny: 1.5e-9, huge: 6.02e23, float: 1.5, bool: true,
        text: "quote \" backslash \\ slash / newline \n tab \t nul \u{0} bell \u{7} é 中文 🐙 \u{2028}",
        optionalPresent: 7, optionalAbsent: nil,
        inner: Inner(name: "n", tags: ["a", "b"], score: nil),
        inners: [Inner(name: "x", tags: [], score: 1), Inner(name: "y", tags: ["z"], score: -2.5)],
        matrix: [[1, 2], [], [3]], optionals: [1, nil, 3], byName: ["one": 1, "two": 2], byNumber: [1: "a", 20: "b"],
        shapes: [.circle(radius: 2), .rectangle(width: 3, height: 4), .empty], color: .green,
        date: Date(timeIntervalSinceReferenceDate: 123_456.789), data: Data([0, 1, 2, 250, 255]),
        url: URL(string: "https://example.com/a?b=c#d")!, decimal: Decimal(string: "12345.6789")!, empty: Empty(),
        emptyArray: [])

    func encode<T: Encodable>(_ value: T) throws -> ByteBuffer {
        var buffer = ByteBuffer()
        try JSONCodec().encode(value, into: &buffer)
        return buffer
    }

    func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        try JSONCodec().decode(type, from: ByteBuffer(string: text))
    }

    @Test func roundTripsAndInteroperatesWithFoundationBothWays() throws {
        let ours = try encode(Self.model)
        #expect(try JSONCodec().decode(Model.self, from: ours) == Self.model)
        #expect(try JSONDecoder().decode(Model.self, from: Data(ours.readableBytesView)) == Self.model)
        let theirs = try JSONEncoder().encode(Self.model)
        #expect(try JSONCodec().decode(Model.self, from: ByteBuffer(bytes: theirs)) == Self.model)
        // Same JSON value (key order and number spelling may differ): compare through JSONSerialization.
        let a = try JSONSerialization.jsonObject(with: Data(ours.readableBytesView)) as? NSDictionary
        let b = try JSONSerialization.jsonObject(with: theirs) as? NSDictionary
        #expect(a == b)
    }

    @Test func topLevelFragmentsAndWhitespace() throws {
        #expect(String(buffer: try encode(42)) == "42")
        #expect(String(buffer: try encode("a\"b")) == #""a\"b""#)
        #expect(String(buffer: try encode([1, 2])) == "[1,2]")
        #expect(String(buffer: try encode(Optional<Int>.none)) == "null")
        #expect(String(buffer: try encode(2.0)) == "2")
        #expect(try decode(Int.self, " \n 17 \t") == 17)
        #expect(try decode([String: [Int]].self, #"{"a": [1, 2], "b": []}"#) == ["a": [1, 2], "b": []])
        #expect(try decode(Int?.self, "null") == nil)
        #expect(try decode(String.self, #""\u00e9\ud83d\udc19\/\b\f""#) == "é🐙/\u{8}\u{c}")
        #expect(try decode(Int.self, "1.0e2") == 100, "a whole number with a fraction or exponent")
        #expect(try decode(Double.self, "-0.125E+1") == -1.25)
        #expect(try decode(Int64.self, "-9223372036854775808") == .min)
    }

    @Test func invalidJSONIsADecodingErrorNeverACrash() {
        let bad = [
            "", " ", "{", "}", "[1,]", "[1 2]", "{\"a\"}", "{\"a\":}", "{a:1}", "01", "-", "1.", "1e", "+1", ".5",
            "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\u{1}\"", "tru", "nul", "1 2", "[]]", "{\"a\":1,}",
            String(repeating: "[", count: 600) + String(repeating: "]", count: 600),
        ]
        for text in bad {
            #expect(throws: DecodingError.self, "\(text.prefix(20))") { _ = try decode([String: Int].self, text) }
        }
    }

    @Test func errorsNameWhatAndWhere() throws {
        do {
            _ = try decode(Inner.self, #"{"name": "n"}"#)
            Issue.record("decoded without tags")
        } catch DecodingError.keyNotFound(let key, _) {
            #expect(key.stringValue == "tags")
        }
        do {
            _ = try decode(Inner.self, #"{"name": 5, "tags": []}"#)
            Issue.record("decoded a number as a string")
        } catch DecodingError.typeMismatch(_, let context) {
            #expect(context.codingPath.map(\.stringValue) == ["name"])
        }
        do {
            _ = try decode([UInt8].self, "[1, 300]")
            Issue.record("300 fit in UInt8")
        } catch DecodingError.dataCorrupted(let context) {
            #expect(context.codingPath.map(\.stringValue) == ["Index 1"])
        }
        #expect(throws: DecodingError.self) { _ = try decode(Inner.self, #"{"name": null, "tags": []}"#) }
        #expect(throws: EncodingError.self) { _ = try encode(Double.nan) }
        #expect(throws: EncodingError.self) { _ = try encode([Double.infinity]) }
    }

    struct Interleaved: Encodable {
        func encode(to encoder: any Encoder) throws {
            enum K: CodingKey { case a, b }
            var outer = encoder.container(keyedBy: K.self)
            var first = outer.nestedUnkeyedContainer(forKey: .a)
            try first.encode(1)
            try outer.encode(2, forKey: .b)
            try first.encode(3)  // the nested container was left: not representable while streaming
        }
    }

    @Test func containersUsedOutOfNestingOrderAreRefused() throws {
        #expect(throws: EncodingError.self) { _ = try encode(Interleaved()) }
        // Foundation's codec takes it.
        var buffer = ByteBuffer()
        try FoundationJSONCodec().encode(Interleaved(), into: &buffer)
        #expect(String(buffer: buffer).contains("[1,3]"))
    }

    /// Random mutations of valid documents: the parser never crashes and agrees with Foundation on what is JSON
    /// (but for trailing commas, which Foundation lets through).
    @Test func mutatedDocumentsAgreeWithFoundationOnValidity() async {
        let disagreements = await onThread { () -> [String] in
            var random = SplitMix(seed: 99)
            let seed = Array(#"{"a":[1,-2.5e3,true,null,"x\u00e9\n"],"b":{"c":{}},"d":[]}"#.utf8)
            let alphabet = Array(#"{}[]:,"\-+.eE0123456789 tfnlrua"#.utf8)
            var found: [String] = []
            for _ in 0..<20000 {
                var bytes = seed
                for _ in 0..<(1 + Int(random.next() % 3)) {
                    let at = Int(random.next() % UInt64(bytes.count))
                    switch random.next() % 3 {
                    case 0: bytes[at] = alphabet[Int(random.next() % UInt64(alphabet.count))]
                    case 1: bytes.remove(at: at)
                    default: bytes.insert(alphabet[Int(random.next() % UInt64(alphabet.count))], at: at)
                    }
                }
                let ours = bytes.withUnsafeBytes { (try? JSONTape.parse($0)) != nil }
                let theirs = (try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])) != nil
                // Foundation accepts a trailing comma (`[1,]`, `{"a":1,}`); RFC 8259 does not, nor does Octopus.
                let text = String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: " ", with: "")
                if theirs, !ours, text.contains(",]") || text.contains(",}") { continue }
                if ours != theirs { found.append(String(decoding: bytes, as: UTF8.self)) }
            }
            return found
        }
        #expect(disagreements.count == 0, "\(disagreements.prefix(5))")
    }
}
