import Foundation
import Logging
import Synchronization
import Testing
import TestSupport

@testable import OctopusLog

/// A value whose description counts how often it was asked for (to see what a call evaluates).
private final class Counted: CustomStringConvertible, Sendable {
    let count = Atomic<Int>(0)
    var description: String {
        count.add(1, ordering: .relaxed)
        return "counted"
    }
}

/// A handler of another backend: keeps what reaches it.
private struct KeepingHandler: LogHandler {
    final class Box: @unchecked Sendable {
        let lock = NSLock()
        var events: [(level: Logger.Level, message: String, metadata: Logger.Metadata?, line: UInt)] = []
    }
    let box: Box
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        box.lock.lock()
        box.events.append((event.level, event.message.description, event.metadata, event.line))
        box.lock.unlock()
    }
}

@Suite struct DirectLoggerTests {
    static let yaml = """
        log:
          appenders: { all: { type: recording, layout: { type: pattern, pattern: "%c %p %m%X" } } }
          categories: { default: { appenders: [all], level: trace } }
        """

    static func lines(_ system: LogSystem) -> [String] {
        (system.appender(named: "all") as? RecordingAppender)?.lines ?? []
    }

    /// Logs the same lines either through `Logger` or through its direct call, with the same source location.
    static func logTheLines(_ logger: Logger, direct: Bool) {
        let long = String(repeating: "0123456789", count: 40)  // past the 256 bytes a message holds inline
        let file = "App/Sources/App/Direct.swift"
        let function = "handle(_:)"
        let name: Substring = "a substring"
        if direct {
            let log = logger.direct
            log.info("", file: file, function: function, line: 1)
            log.info("plain literal", file: file, function: function, line: 2)
            log.info("user \(12345) n=\(-42) \(Int.min) \(UInt64.max) \(Int8(-5)) \(0)", file: file, function: function, line: 3)
            log.info("ümlaut 日本語 🐙 \("interpolated ü") \(name)", file: file, function: function, line: 4)
            log.info("\(long) and \(long)", file: file, function: function, line: 5)
            log.info("\(3.5) \(true) \(Optional(7) as Any) \([1, 2])", file: file, function: function, line: 6)
            log.trace("at trace \(1)", file: file, function: function, line: 7)
            log.debug("at debug \(2)", file: file, function: function, line: 8)
            log.notice("at notice \(3)", file: file, function: function, line: 9)
            log.warning("at warning \(4)", file: file, function: function, line: 10)
            log.error("at error \(5)", file: file, function: function, line: 11)
            log.critical("at critical \(6)", file: file, function: function, line: 12)
            log.info("with metadata \(7)", metadata: ["request": "r 1", "user": "u7"], file: file, function: function, line: 13)
            log.log(level: .warning, "by level \(8)", file: file, function: function, line: 14)
        } else {
            logger.info("", file: file, function: function, line: 1)
            logger.info("plain literal", file: file, function: function, line: 2)
            logger.info("user \(12345) n=\(-42) \(Int.min) \(UInt64.max) \(Int8(-5)) \(0)", file: file, function: function, line: 3)
            logger.info("ümlaut 日本語 🐙 \("interpolated ü") \(name)", file: file, function: function, line: 4)
            logger.info("\(long) and \(long)", file: file, function: function, line: 5)
            logger.info("\(3.5) \(true) \(Optional(7) as Any) \([1, 2])", file: file, function: function, line: 6)
            logger.trace("at trace \(1)", file: file, function: function, line: 7)
            logger.debug("at debug \(2)", file: file, function: function, line: 8)
            logger.notice("at notice \(3)", file: file, function: function, line: 9)
            logger.warning("at warning \(4)", file: file, function: function, line: 10)
            logger.error("at error \(5)", file: file, function: function, line: 11)
            logger.critical("at critical \(6)", file: file, function: function, line: 12)
            logger.info("with metadata \(7)", metadata: ["request": "r 1", "user": "u7"], file: file, function: function, line: 13)
            logger.log(level: .warning, "by level \(8)", file: file, function: function, line: 14)
        }
    }

    /// The file a logger of category `db.pool` writes with `layout`, through `Logger` or its direct call, at level
    /// `level`, with `metadata` on the logger.
    static func written(
        _ layout: LayoutConfiguration, direct: Bool, level: LogLevel = .all, metadata: Logger.Metadata = [:]
    ) throws -> String {
        let dir = try TemporaryDirectory()
        let path = dir.file("app.log")
        let system = try LogSystem(
            LogConfiguration(
                appenders: ["file": AppenderConfiguration(.file(FileAppenderOptions(filename: path)), layout: layout)],
                categories: ["default": CategoryConfiguration(appenders: ["file"], level: level)]),
            clock: .fixed(fixedTime), environment: testEnvironment)
        var logger = system.logger(label: "db.pool")
        for (key, value) in metadata { logger[metadataKey: key] = value }
        // Without metadata on the logger its direct calls take the writers' path (the call's metadata aside).
        #expect((logger.handler as? OctopusLogHandler)?.hasMetadataToMerge == !metadata.isEmpty)
        // Every layout but `json` (which builds a record) writes from the event's parts.
        var buildsARecord = false
        if case .json = layout { buildsARecord = true }
        #expect((system.node(for: "db.pool").eventWriters == nil) == buildsARecord)
        logTheLines(logger, direct: direct)
        system.shutdownNow()
        return try String(contentsOfFile: path, encoding: .utf8)
    }

    /// Every layout (the writer rendering the line, the caller rendering it, a record built), every level, metadata
    /// from the call and the logger, messages of every kind (empty, literal, integers at their extremes, non-ASCII,
    /// longer than the inline bytes, values described): the direct call writes the bytes `Logger` writes.
    @Test(arguments: [
        LayoutConfiguration.pattern("%d{yyyy-MM-dd hh:mm:ss.SSS} [%p] %c - %m", tokens: [:], timeZone: .utc),
        .pattern("%d %p %c %f:%l %M %m%X{request}%n%X", tokens: [:], timeZone: .utc), .basic(timeZone: .utc),
        .colored(timeZone: .utc), .messagePassThrough, .json(timeZone: .utc),
    ])
    func theDirectCallWritesTheBytesLoggerWrites(_ layout: LayoutConfiguration) throws {
        let expected = try Self.written(layout, direct: false)
        #expect(expected.utf8.filter { $0 == 10 }.count >= 14)
        #expect(try Self.written(layout, direct: true) == expected)
        // The logger's own metadata, and a category level that drops some of the lines.
        let withMetadata = try Self.written(layout, direct: false, level: .info, metadata: ["shard": "3"])
        #expect(try Self.written(layout, direct: true, level: .info, metadata: ["shard": "3"]) == withMetadata)
    }

    /// A level that is off evaluates neither the message nor the metadata, whether the category's level or the
    /// logger's own (`logger.logLevel`) turns it off.
    @Test func aLevelThatIsOffEvaluatesNothing() throws {
        let system = try recordingSystem(Self.yaml)
        system.setLevel(.info, for: "api")
        let counted = Counted()
        var metadataAsked = 0
        func metadata() -> Logger.Metadata {
            metadataAsked += 1
            return ["k": "v"]
        }
        var logger = system.logger(label: "api")
        logger.direct.debug("\(counted)", metadata: metadata())
        #expect(counted.count.load(ordering: .relaxed) == 0)
        #expect(metadataAsked == 0)
        logger.direct.info("\(counted)", metadata: metadata())
        #expect(counted.count.load(ordering: .relaxed) == 1)
        #expect(metadataAsked == 1)
        logger.logLevel = .error
        logger.direct.warning("\(counted)")
        logger.direct.error("\(counted) at error")
        #expect(counted.count.load(ordering: .relaxed) == 2)
        #expect(Self.lines(system) == ["api INFO counted k=v", "api ERROR counted at error"])
    }

    /// A provider's metadata and the logger's reach the line as they do through `Logger`.
    @Test func metadataFromTheLoggerItsProviderAndTheCallMerge() throws {
        let system = try recordingSystem(Self.yaml)
        let provider = Logger.MetadataProvider { ["request": "r1", "shared": "provider"] }
        var logger = system.logger(label: "api", metadataProvider: provider)
        logger[metadataKey: "user"] = "u7"
        logger.direct.info("direct \(1)", metadata: ["shared": "call"])
        logger.info("swift-log \(1)", metadata: ["shared": "call"])
        let lines = Self.lines(system)
        #expect(lines == ["api INFO direct 1 request=r1 shared=call user=u7", "api INFO swift-log 1 request=r1 shared=call user=u7"])
    }

    /// With another backend's handler, the direct call is `Logger.log` with the message as a string.
    @Test func anotherBackendGetsTheCallThroughLogger() {
        let box = KeepingHandler.Box()
        let logger = Logger(label: "elsewhere") { _ in KeepingHandler(box: box) }
        let counted = Counted()
        logger.direct.debug("dropped \(counted)")
        logger.direct.warning("n=\(42) \("ü")", metadata: ["k": "v"], line: 9)
        #expect(counted.count.load(ordering: .relaxed) == 0)
        #expect(box.events.count == 1)
        #expect(box.events.first?.level == .warning)
        #expect(box.events.first?.message == "n=42 ü")
        #expect(box.events.first?.metadata == ["k": "v"])
        #expect(box.events.first?.line == 9)
    }

    /// From several threads at once, each line whole, once, in its thread's order.
    @Test func threadsLoggingDirectlyKeepEveryLineWholeAndInOrder() async throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("app.log")
        let system = try fileSystem(path, writer: WriterOptions(bufferSize: 64 * 1024))
        let threads = 4
        let perThread = 20_000
        let padding = String(repeating: "x", count: 60)
        await inParallel(threads) { t in
            let log = system.logger(label: "worker.\(t)").direct
            for i in 0..<perThread { log.info("t=\(t) i=\(i) \(padding)") }
        }
        try await system.shutdown()
        expectEachThreadsLinesOnceInOrder(try fileLines(path), threads: threads, perThread: perThread, padding: padding)
    }
}
