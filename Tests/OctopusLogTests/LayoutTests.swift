import Foundation
import Logging
import Synchronization
import Testing

@testable import OctopusLog

/// 2026-11-21T12:34:56.789Z
let fixedTime = LogTimestamp(seconds: 1_795_264_496, nanoseconds: 789_000_000)
let testEnvironment = LayoutEnvironment(pid: 4242, hostname: "testhost")

func record(
    _ message: String = "user 12345 logged in",
    level: LogLevel = .info,
    category: String = "db.pool.conn",
    metadata: Logger.Metadata = [:],
    time: LogTimestamp = fixedTime
) -> LogRecord {
    LogRecord(
        level: level, category: category, message: message, metadata: metadata, timestamp: time,
        file: "App/Sources/App/Database.swift", function: "connect(to:)", line: 42
    )
}

func pattern(_ text: String, tokens: [String: PatternToken] = [:], zone: LogTimeZone = .utc, _ r: LogRecord = record())
    throws -> String
{
    try PatternLayout(pattern: text, tokens: tokens, timeZone: zone, environment: testEnvironment).string(for: r)
}

@Suite struct PatternLayoutTests {
    @Test func everySimpleToken() throws {
        #expect(try pattern("%p") == "INFO")
        #expect(try pattern("%c") == "db.pool.conn")
        #expect(try pattern("%m") == "user 12345 logged in")
        #expect(try pattern("a%nb") == "a\nb")
        #expect(try pattern("%h") == "testhost")
        #expect(try pattern("%z") == "4242")
        #expect(try pattern("%y") == "4242")
        #expect(try pattern("%r") == "12:34:56")
        #expect(try pattern("100%%") == "100%")
        #expect(try pattern("%l") == "42")
        #expect(try pattern("%M") == "connect(to:)")
        #expect(try pattern("%F") == "connect(to:)")
        #expect(try pattern("%f") == "App/Sources/App/Database.swift")
        #expect(try pattern("[%o%s%C%A]") == "[]")
    }

    /// A pattern that reads only the event is rendered by the file appender from the event's parts, with no record
    /// built and what the category and level fix rendered once; one that reads the metadata or a token computed from
    /// the record takes the record. Both write what the layout renders from the record, byte for byte.
    @Test(arguments: [
        ("%d{yyyy-MM-dd hh:mm:ss.SSS} [%p] %c - %m", true),
        ("%r %-6p %.2c{2} %10.-4f{1}:%l %M %x{app} %x{unknown} %h %z %y %[%p%] 100%% %m%n", true),
        ("%d %5.5p %c{1} %f %F [%o%s%C%A]", true),
        ("%-14c|%-7.3p|%5x{app}|%m|%.-2c%n%z", true),
        ("%d [%p] %c - %m%X", true),
        ("%d %X{user} [%p] %c - %m (%X{req})", true),
        ("%d [%p] %c - %m %X{user} %x{computed}", false),
    ])
    func theFileAppenderWritesWhatTheRecordRendersTo(_ text: String, rendersFromTheEvent: Bool) throws {
        let dir = try TemporaryDirectory()
        let tokens: [String: PatternToken] = ["app": .constant("shop"), "computed": .dynamic { "\($0.line * 2)" }]
        let configuration = LogConfiguration(
            appenders: [
                "file": AppenderConfiguration(
                    .file(FileAppenderOptions(filename: dir.file("app.log"))),
                    layout: .pattern(text, tokens: tokens, timeZone: .utc))
            ],
            categories: ["default": CategoryConfiguration(appenders: ["file"], level: .all)])
        let system = try LogSystem(configuration, clock: .fixed(fixedTime), environment: testEnvironment)
        defer { system.shutdownNow() }
        #expect((system.node(for: "db.pool.conn").eventWriters != nil) == rendersFromTheEvent)
        var logger = system.logger(label: "db.pool.conn")
        logger[metadataKey: "user"] = "u 1"
        for level in [Logger.Level.debug, .info, .error] {
            logger.log(
                level: level, "user 12345 logged in", metadata: level == .info ? ["req": "a b"] : nil,
                file: "App/Sources/App/Database.swift", function: "connect(to:)", line: 42)
        }
        system.flush()
        let layout = try PatternLayout(pattern: text, tokens: tokens, timeZone: .utc, environment: testEnvironment)
        let expected = [LogLevel.debug, .info, .error].map { level in
            var event = record(level: level, metadata: level == .info ? ["user": "u 1", "req": "a b"] : ["user": "u 1"])
            event.category = "db.pool.conn"
            return layout.string(for: event) + "\n"
        }
        #expect(try String(contentsOfFile: dir.file("app.log"), encoding: .utf8) == expected.joined())
    }

    @Test func categoryPrecisionKeepsTheLastParts() throws {
        #expect(try pattern("%c{1}") == "conn")
        #expect(try pattern("%c{2}") == "pool.conn")
        #expect(try pattern("%c{5}") == "db.pool.conn")
    }

    @Test func fileDepthKeepsTheLastPathParts() throws {
        #expect(try pattern("%f{1}") == "Database.swift")
        #expect(try pattern("%f{2}") == "App/Database.swift")
        #expect(try pattern("%f{9}") == "App/Sources/App/Database.swift")
    }

    @Test func dateNamedFormats() throws {
        #expect(try pattern("%d") == "2026-11-21T12:34:56.789")
        #expect(try pattern("%d{ISO8601}") == "2026-11-21T12:34:56.789")
        #expect(try pattern("%d{ISO8601_WITH_TZ_OFFSET}") == "2026-11-21T12:34:56.789Z")
        #expect(try pattern("%d{ABSOLUTETIME}") == "12:34:56.789")
        #expect(try pattern("%d{ABSOLUTE}") == "12:34:56.789")
        #expect(try pattern("%d{DATETIME}") == "21 11 2026 12:34:56.789")
        #expect(try pattern("%d{DATE}") == "21 11 2026 12:34:56.789")
    }

    @Test func dateCustomFormats() throws {
        #expect(try pattern("%d{yyyy-MM-dd hh:mm:ss.SSS}") == "2026-11-21 12:34:56.789")
        #expect(try pattern("%d{yy/MM/dd}") == "26/11/21")
        #expect(try pattern("%d{hh:mm O}") == "12:34 Z")
    }

    @Test func dateInNamedZonesAndOffsets() throws {
        #expect(try pattern("%d{ISO8601_WITH_TZ_OFFSET}", zone: .named("Asia/Kolkata")) == "2026-11-21T18:04:56.789+05:30")
        #expect(try pattern("%d{ISO8601_WITH_TZ_OFFSET}", zone: .named("America/New_York")) == "2026-11-21T07:34:56.789-05:00")
        // Summer time in New York: -04:00.
        let july = record(time: LogTimestamp(seconds: 1_795_264_496 - 140 * 86_400, nanoseconds: 0))
        #expect(try pattern("%d{yyyy-MM-dd hh O}", zone: .named("America/New_York"), july) == "2026-07-04 08 -04:00")
    }

    @Test func datesAcrossLeapDaysAndBeforeTheEpoch() throws {
        let leap = record(time: LogTimestamp(seconds: 1_709_251_199, nanoseconds: 5_000_000))
        #expect(try pattern("%d", leap) == "2024-02-29T23:59:59.005")
        let before = record(time: LogTimestamp(seconds: -3600, nanoseconds: 0))
        #expect(try pattern("%d", before) == "1969-12-31T23:00:00.000")
    }

    @Test func paddingAndTruncation() throws {
        #expect(try pattern("[%5p]") == "[ INFO]")
        #expect(try pattern("[%-5p]") == "[INFO ]")
        #expect(try pattern("[%.2p]") == "[IN]")
        #expect(try pattern("[%.-2p]") == "[FO]")
        #expect(try pattern("[%.10c]") == "[db.pool.co]")
        #expect(try pattern("[%.-10c]") == "[.pool.conn]")
        #expect(try pattern("[%-8.3p]") == "[INF     ]")
        #expect(try pattern("[%8.-3p]") == "[     NFO]")
        #expect(try pattern("[%3p]") == "[INFO]")  // padding never truncates
        // Characters, not bytes, for non-ASCII text.
        #expect(try pattern("[%-4m]", record("é")) == "[é   ]")
        #expect(try pattern("[%.2m]", record("日本語")) == "[日本]")
    }

    @Test func colourBlocksUseTheLevelColour() throws {
        #expect(try pattern("%[%p%] %m") == "\u{1B}[32mINFO\u{1B}[39m user 12345 logged in")
        #expect(try pattern("%[%p%]", record(level: .error)) == "\u{1B}[91mERROR\u{1B}[39m")
        #expect(try pattern("%[%p%]", record(level: .warn)) == "\u{1B}[33mWARN\u{1B}[39m")
    }

    @Test func userTokensConstantAndDynamic() throws {
        let tokens: [String: PatternToken] = [
            "app": .constant("shop"),
            "len": .dynamic { String($0.message.count) },
        ]
        #expect(try pattern("%x{app}/%x{len}/%x{missing}|", tokens: tokens) == "shop/20/|")
    }

    @Test func metadataTokens() throws {
        let r = record(metadata: ["host": "10.0.0.5", "port": .stringConvertible(5432), "tags": ["a", "b"]])
        #expect(try pattern("%X{host}:%X{port}", r) == "10.0.0.5:5432")
        #expect(try pattern("[%X{absent}]", r) == "[]")
        // Every pair as logfmt writes it: a value with a space, quote, `=` or control character is quoted.
        #expect(try pattern("%m%X", r) == #"user 12345 logged in host=10.0.0.5 port=5432 tags="[\"a\", \"b\"]""#)
        #expect(try pattern("%m%X") == "user 12345 logged in")
    }

    @Test func metadataValuesThatNeedItAreQuotedSoALineReadsBackIntoItsPairs() throws {
        let r = record(metadata: ["user": "u 0", "empty": "", "query": "a=b", "note": "say \"hi\"\nbye", "path": #"C:\tmp"#, "plain": "ok"])
        let line = try pattern("%X", r)
        #expect(line == #" empty="" note="say \"hi\"\nbye" path="C:\\tmp" plain=ok query="a=b" user="u 0""#)
        // Read back as logfmt: every pair whole.
        var pairs: [String: String] = [:]
        var rest = Substring(line)
        while let space = rest.firstIndex(of: " ") {
            rest = rest[rest.index(after: space)...]
            guard let equals = rest.firstIndex(of: "=") else { break }
            let key = String(rest[..<equals])
            rest = rest[rest.index(after: equals)...]
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                while let c = rest.first, c != "\"" {
                    rest = rest.dropFirst()
                    if c == "\\", let next = rest.first {
                        rest = rest.dropFirst()
                        value.append(next == "n" ? "\n" : next == "t" ? "\t" : next == "r" ? "\r" : next)
                    } else {
                        value.append(c)
                    }
                }
                rest = rest.dropFirst()
            } else {
                let end = rest.firstIndex(of: " ") ?? rest.endIndex
                value = String(rest[..<end])
                rest = rest[end...]
            }
            pairs[key] = value
        }
        #expect(pairs == ["user": "u 0", "empty": "", "query": "a=b", "note": "say \"hi\"\nbye", "path": #"C:\tmp"#, "plain": "ok"])
        // One value alone (%X{key}) is printed as it is, as log4js prints it.
        #expect(try pattern("%X{user}", r) == "u 0")
    }

    @Test func theBenchmarkPattern() throws {
        #expect(try pattern("%d{yyyy-MM-dd hh:mm:ss.SSS} [%p] %c - %m") == "2026-11-21 12:34:56.789 [INFO] db.pool.conn - user 12345 logged in")
    }

    @Test func defaultPatternIsLog4jsTTCC() throws {
        #expect(try pattern(PatternLayout.defaultPattern) == "12:34:56 INFO db.pool.conn - user 12345 logged in\n")
    }

    @Test func badPatternsSayWhatAndWhere() {
        #expect(throws: PatternError(pattern: "ab %Q", offset: 3, reason: "unknown token \"%Q\"")) { try pattern("ab %Q") }
        #expect(throws: PatternError.self) { try pattern("%d{yyyy") }
        #expect(throws: PatternError.self) { try pattern("%c{x}") }
        #expect(throws: PatternError.self) { try pattern("%x") }
        #expect(throws: PatternError.self) { try pattern("trailing %") }
        #expect(throws: PatternError.self) { try pattern("%.p") }
        let error = try? #require(throws: PatternError.self) { try pattern("x %Q") }
        #expect(error?.description == "unknown token \"%Q\" at offset 2 in pattern \"x %Q\"")
    }
}

@Suite struct FixedLayoutTests {
    @Test func basic() {
        let layout = BasicLayout(timeZone: .utc)
        #expect(layout.string(for: record()) == "[2026-11-21T12:34:56.789] [INFO] db.pool.conn - user 12345 logged in")
        #expect(
            layout.string(for: record(metadata: ["b": "2", "a": "1"]))
                == "[2026-11-21T12:34:56.789] [INFO] db.pool.conn - user 12345 logged in a=1 b=2"
        )
    }

    @Test func coloured() {
        let layout = ColoredLayout(timeZone: .utc)
        #expect(
            layout.string(for: record(level: .error))
                == "\u{1B}[91m[2026-11-21T12:34:56.789] [ERROR] db.pool.conn - \u{1B}[39muser 12345 logged in"
        )
        #expect(layout.string(for: record(level: .fatal)).hasPrefix("\u{1B}[35m"))
        #expect(layout.string(for: record(level: .trace)).hasPrefix("\u{1B}[34m"))
        #expect(layout.string(for: record(level: .debug)).hasPrefix("\u{1B}[36m"))
        #expect(layout.string(for: record(level: .mark)).hasPrefix("\u{1B}[90m"))
    }

    @Test func messagePassThrough() {
        #expect(MessagePassThroughLayout().string(for: record(metadata: ["a": "1"])) == "user 12345 logged in")
    }

    /// `basic`, `coloured` and `messagePassThrough` write events from their parts (no record built), `basic` and
    /// `coloured` with the metadata and error after the line: the file holds exactly what the layout renders from the
    /// record, at every level, across milliseconds, seconds, days and zones, with metadata from the logger, the call
    /// or both (the call's winning), values that need quotes, and errors.
    @Test(arguments: [
        LayoutConfiguration.basic(timeZone: .utc), .basic(timeZone: .named("Asia/Tokyo")), .colored(timeZone: .utc),
        .colored(timeZone: .named("America/St_Johns")), .messagePassThrough,
    ])
    func eventsAreWrittenFromTheirPartsAsTheRecordRenders(_ layoutConfiguration: LayoutConfiguration) throws {
        struct Refused: Error {}
        @Sendable func timestamp(_ nanoseconds: Int64) -> LogTimestamp {
            LogTimestamp(seconds: nanoseconds / 1_000_000_000, nanoseconds: Int32(nanoseconds % 1_000_000_000))
        }
        let dir = try TemporaryDirectory()
        let now = Atomic<Int64>(0)
        let configuration = LogConfiguration(
            appenders: ["file": AppenderConfiguration(.file(FileAppenderOptions(filename: dir.file("app.log"))), layout: layoutConfiguration)],
            categories: ["default": CategoryConfiguration(appenders: ["file"], level: .all)])
        let system = try LogSystem(
            configuration, clock: .custom { timestamp(now.load(ordering: .relaxed)) },
            environment: testEnvironment)
        defer { system.shutdownNow() }
        let node = system.node(for: "db.pool.conn")
        #expect(node.eventWriters != nil)
        if case .messagePassThrough = layoutConfiguration {
            #expect(!node.eventWritersPrintMetadata)
        } else {
            #expect(node.eventWritersPrintMetadata)
        }
        let logger = system.logger(label: "db.pool.conn")
        let layout = try layoutConfiguration.make(environment: testEnvironment)
        var expected = ""
        var time = Int64(fixedTime.seconds) * 1_000_000_000 + Int64(fixedTime.nanoseconds)
        for step in 0..<400 {
            // Steps of ~0.37 s and, now and then, of a day and a bit.
            time += step % 50 == 49 ? 86_400_123_456_789 : 370_123_457
            now.store(time, ordering: .relaxed)
            let level = Logger.Level.allCases[step % Logger.Level.allCases.count]
            var entry = LogRecord(
                level: system.levels.level(for: level), category: "db.pool.conn", message: "line \(step) ü",
                timestamp: timestamp(time), file: "App/Sources/App/Database.swift",
                function: "connect(to:)", line: 42)
            switch step % 8 {
            case 5:
                entry.metadata = ["request": "r \(step)"]
                logger.log(level: level, "line \(step) ü", metadata: ["request": "r \(step)"], file: entry.file, function: entry.function, line: 42)
            case 6:
                entry.error = Refused()
                logger.log(level: level, "line \(step) ü", error: Refused(), file: entry.file, function: entry.function, line: 42)
            case 7:
                var tagged = logger
                tagged[metadataKey: "user"] = "u \(step)"
                tagged[metadataKey: "request"] = "r"
                entry.metadata = ["user": "u \(step)", "request": "q=\"\(step)\"", "a": "1"]
                tagged.log(
                    level: level, "line \(step) ü", metadata: ["request": "q=\"\(step)\"", "a": "1"], file: entry.file,
                    function: entry.function, line: 42)
            default:
                logger.log(level: level, "line \(step) ü", file: entry.file, function: entry.function, line: 42)
            }
            expected += layout.string(for: entry) + "\n"
        }
        system.flush()
        #expect(try String(contentsOfFile: dir.file("app.log"), encoding: .utf8) == expected)
    }

    /// Pairs are written in key order however many there are (a few are ordered without sorting an array).
    @Test func metadataPairsInKeyOrder() {
        for count in 0...12 {
            var metadata: Logger.Metadata = [:]
            for k in (0..<count).shuffled() { metadata["k\(k * 7 % 13)é"] = "v \(k)" }
            var out = LogBuffer()
            appendMetadataPairs(metadata, into: &out)
            let expected = metadata.keys.sorted().map { " \($0)=\"\(metadata[$0]!)\"" }.joined()
            #expect(out.string == expected, "\(count) pairs")
        }
    }

    @Test func basicInAZone() {
        #expect(BasicLayout(timeZone: .named("Asia/Tokyo")).string(for: record()).hasPrefix("[2026-11-21T21:34:56.789]"))
    }
}

@Suite struct JSONLayoutTests {
    @Test func allFieldsInOrder() {
        let layout = JSONLayout(timeZone: .utc, environment: testEnvironment)
        let line = layout.string(for: record(metadata: ["host": "10.0.0.5", "n": .stringConvertible(3), "list": ["x", ["k": "v"]]]))
        #expect(
            line
                == #"{"time":"2026-11-21T12:34:56.789+00:00","level":"INFO","category":"db.pool.conn","message":"user 12345 logged in","metadata":{"host":"10.0.0.5","list":["x",{"k":"v"}],"n":"3"},"pid":4242,"hostname":"testhost","file":"App/Sources/App/Database.swift","line":42,"function":"connect(to:)"}"#
        )
    }

    @Test func offsetInANamedZone() {
        let line = JSONLayout(timeZone: .named("Asia/Kolkata"), environment: testEnvironment).string(for: record())
        #expect(line.hasPrefix(#"{"time":"2026-11-21T18:04:56.789+05:30""#))
    }

    @Test func escapesEverythingJSONRequires() throws {
        let nasty = "q\"b\\s/\n\r\t\u{08}\u{0C}\u{01}\u{1F}\u{7F} é 日本 \u{2028}\u{2029} 🐙"
        let line = JSONLayout(timeZone: .utc, environment: testEnvironment).string(for: record(nasty))
        #expect(line.contains(#""message":"q\"b\\s/\n\r\t\b\f\u0001\u001f\u007f é 日本 \u2028\u2029 🐙""#))
        // And a JSON parser reads the message back exactly.
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["message"] as? String == nasty)
    }

    /// The eight-bytes-at-a-time check says "nothing to escape" exactly when no byte needs a look, for random words
    /// made mostly of the bytes on either side of every boundary, and a message with each such byte at every offset of a long plain
    /// run escapes as JSON requires.
    @Test func theWordAtATimeScanMissesNoByteThatNeedsEscaping() throws {
        let edges: [UInt8] = [0x00, 0x01, 0x1F, 0x20, 0x21, 0x22, 0x23, 0x5B, 0x5C, 0x5D, 0x7E, 0x7F, 0x80, 0xE1, 0xE2, 0xFE, 0xFF, 0x61]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            var word: UInt64 = 0
            var plain = true
            for k in 0..<8 {
                let byte = Int.random(in: 0..<4, using: &generator) == 0 ? UInt8.random(in: 0...255, using: &generator) : edges.randomElement(using: &generator)!
                word |= UInt64(byte) << (8 * k)
                if byte < 0x20 || byte == 0x22 || byte == 0x5C || byte >= 0x7F { plain = false }
            }
            #expect(JSONLayout.isPlain(word) == plain, "\(String(word, radix: 16))")
            if JSONLayout.isPlain(word) != plain { break }
        }
        let layout = JSONLayout(timeZone: .utc, environment: testEnvironment)
        for special in ["\"", "\\", "\n", "\u{01}", "\u{7F}", "\u{2028}", "é"] {
            for offset in 0..<20 {
                let message = String(repeating: "a", count: offset) + special + String(repeating: "b", count: 20 - offset)
                let line = layout.string(for: record(message))
                let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                #expect(object["message"] as? String == message)
                #expect(!line.contains("\u{2028}"))
            }
        }
    }

    @Test func invalidUTF8BecomesReplacementCharacters() throws {
        let broken = String(decoding: [0x61, 0xFF, 0xFE, 0x62, 0xC3], as: UTF8.self)
        let line = JSONLayout(timeZone: .utc, environment: testEnvironment).string(for: record(broken))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["message"] as? String == "a\u{FFFD}\u{FFFD}b\u{FFFD}")
    }

    @Test func errorField() {
        struct Boom: Error, CustomStringConvertible { var description: String { "boom \"x\"" } }
        var r = record()
        r.error = Boom()
        let line = JSONLayout(timeZone: .utc, environment: testEnvironment).string(for: r)
        #expect(line.contains(#""metadata":{},"error":"boom \"x\"","pid":4242"#))
    }
}

import Foundation
