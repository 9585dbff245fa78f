import Foundation
import Logging
import OctopusConfig
import Testing
import TestSupport

@testable import OctopusLog

/// A system whose appenders are all `recording`, configured from YAML.
func recordingSystem(_ yaml: String) throws -> LogSystem {
    try LogSystem(LogConfiguration(yaml: yaml), clock: .fixed(fixedTime), environment: testEnvironment)
}

func recorded(_ system: LogSystem, _ name: String) -> [String] {
    (system.appender(named: name) as? RecordingAppender)?.records.map { "\($0.level.name) \($0.category) \($0.message)" } ?? ["<no appender \(name)>"]
}

@Suite struct CategoryTests {
    static let tree = """
        log:
          appenders:
            all: { type: recording }
            db: { type: recording }
            quiet: { type: recording }
          categories:
            default: { appenders: [all], level: info }
            db: { appenders: [db], level: debug }
            db.pool: { level: warn }
            noisy: { appenders: [quiet], level: trace, inherit: false }
        """

    @Test func labelsUseTheirNearestConfiguredCategory() throws {
        let system = try recordingSystem(Self.tree)
        system.logger(label: "db.pool.conn").warning("w")  // db.pool: warn; appenders db + all
        system.logger(label: "db.pool.conn").info("dropped")  // below warn
        system.logger(label: "db.query").debug("d")  // db: debug
        system.logger(label: "web").debug("dropped")  // default: info
        system.logger(label: "web").info("i")
        #expect(recorded(system, "db") == ["WARN db.pool.conn w", "DEBUG db.query d"])
        #expect(recorded(system, "all") == ["WARN db.pool.conn w", "DEBUG db.query d", "INFO web i"])
    }

    @Test func inheritFalseStopsAppenderAccumulation() throws {
        let system = try recordingSystem(Self.tree)
        system.logger(label: "noisy.part").trace("t")
        #expect(recorded(system, "quiet") == ["TRACE noisy.part t"])
        #expect(recorded(system, "all") == [])
    }

    @Test func anAppenderReachedTwiceGetsTheEventOnce() throws {
        let system = try recordingSystem(
            """
            log:
              appenders: { all: { type: recording } }
              categories:
                default: { appenders: [all], level: info }
                a: { appenders: [all] }
            """)
        system.logger(label: "a.b").info("once")
        #expect(recorded(system, "all") == ["INFO a.b once"])
    }

    @Test func levelChangesAtRunTimeReachEveryLoggerAndChildren() throws {
        let system = try recordingSystem(Self.tree)
        let made = system.logger(label: "db.query")  // made before the change
        let child = system.logger(label: "db.query.slow")
        made.trace("before")
        system.setLevel(.trace, for: "db")
        made.trace("after")
        child.trace("child")
        // db.pool has its own level and does not follow db.
        system.logger(label: "db.pool").info("pool info dropped")
        system.setLevel(.error, for: "db.query.slow")
        child.warning("dropped")
        made.debug("parent still trace")
        system.setLevel(nil, for: "db")
        made.debug("back to debug")
        made.trace("dropped")
        #expect(recorded(system, "db") == ["TRACE db.query after", "TRACE db.query.slow child", "DEBUG db.query parent still trace", "DEBUG db.query back to debug"])
        #expect(system.level(for: "db.query.slow") == .error)
        #expect(system.level(for: "web") == .info)
    }

    @Test func offAndMarkLevels() throws {
        let system = try recordingSystem(Self.tree)
        system.setLevel(.off, for: "web")
        let web = system.logger(label: "web")
        web.critical("dropped")
        system.log(.mark, "marked", category: "web")  // MARK < OFF
        system.setLevel(.mark, for: "web")
        web.critical("dropped too")  // FATAL < MARK
        system.log(.mark, "marked", category: "web")
        #expect(recorded(system, "all") == ["MARK web marked"])
    }

    @Test func customLevelsAndNotice() throws {
        let system = try recordingSystem(
            """
            log:
              levels:
                NOTICE: { value: 25000, colour: cyan }
                AUDIT: { value: 45000, colour: magenta }
              appenders: { all: { type: recording, layout: { type: pattern, pattern: "%[%p%] %m" } } }
              categories:
                default: { appenders: [all], level: notice }
            """)
        let logger = system.logger(label: "x")
        logger.info("dropped: INFO < NOTICE")
        logger.notice("notice maps to NOTICE")
        system.log(try #require(system.levels.level(named: "audit")), "audited", category: "x")
        #expect(recorded(system, "all") == ["NOTICE x notice maps to NOTICE", "AUDIT x audited"])
        #expect((system.appender(named: "all") as? RecordingAppender)?.lines == ["\u{1B}[36mNOTICE\u{1B}[39m notice maps to NOTICE", "\u{1B}[35mAUDIT\u{1B}[39m audited"])
    }

    @Test func swiftLogLevelMapping() throws {
        let table = LogLevelTable()
        #expect(Logger.Level.allCases.map { table.level(for: $0).name } == ["TRACE", "DEBUG", "INFO", "INFO", "WARN", "ERROR", "FATAL"])
    }

    @Test func filters() throws {
        let system = try recordingSystem(
            """
            log:
              appenders:
                sink: { type: recording }
                errorsOnly: { type: logLevelFilter, appender: sink, level: error }
                warnToError: { type: recording }
                band: { type: logLevelFilter, appender: warnToError, level: warn, maxLevel: error }
                noDb: { type: categoryFilter, exclude: [db], appender: catSink }
                catSink: { type: recording }
                noSecrets: { type: noLogFilter, exclude: ["password", "^health"], appender: msgSink }
                msgSink: { type: recording }
              categories:
                default: { appenders: [errorsOnly, band, noDb, noSecrets], level: all }
            """)
        let app = system.logger(label: "app")
        let db = system.logger(label: "db")
        let dbPool = system.logger(label: "db.pool")
        app.info("info")
        app.warning("warn")
        app.error("error")
        app.critical("fatal")
        db.info("db line")
        dbPool.info("pool line")
        app.info("my PASSWORD is x")
        app.info("healthcheck ok")
        app.info("not health at start")
        #expect(recorded(system, "sink") == ["ERROR app error", "FATAL app fatal"])
        #expect(recorded(system, "warnToError") == ["WARN app warn", "ERROR app error"])
        #expect(!recorded(system, "catSink").contains("INFO db db line"))
        #expect(recorded(system, "catSink").contains("INFO db.pool pool line"))  // exact names, as log4js
        #expect(!recorded(system, "msgSink").contains { $0.contains("PASSWORD") || $0.contains("healthcheck") })
        #expect(recorded(system, "msgSink").contains("INFO app not health at start"))
    }
}

@Suite struct SwiftLogPathTests {
    static let yaml = """
        log:
          appenders: { all: { type: recording, layout: { type: pattern, pattern: "%c %p %m%X" } } }
          categories: { default: { appenders: [all], level: trace } }
        """

    func lines(_ system: LogSystem) -> [String] {
        (system.appender(named: "all") as? RecordingAppender)?.lines ?? []
    }

    @Test func handlerMetadataProviderAndCallMetadataMergeInOrder() throws {
        let system = try recordingSystem(Self.yaml)
        let provider = Logger.MetadataProvider { ["request": "r1", "shared": "provider"] }
        var logger = system.logger(label: "api", metadataProvider: provider)
        logger[metadataKey: "user"] = "u7"
        logger[metadataKey: "shared"] = "handler"
        logger.info("call", metadata: ["shared": "call", "extra": .stringConvertible(1)])
        logger.info("no call metadata")
        #expect(lines(system) == ["api INFO call extra=1 request=r1 shared=call user=u7", "api INFO no call metadata request=r1 shared=provider user=u7"])
    }

    /// swift-log copies the handler out of the `Logger` on every call: it must fit the existential's three inline
    /// words, or every copy retains a box all threads share. Changing one logger's metadata or level leaves other
    /// copies as they were (value semantics).
    @Test func theHandlerIsSmallAndAValue() throws {
        #expect(MemoryLayout<OctopusLogHandler>.size <= 3 * MemoryLayout<Int>.size)
        let system = try recordingSystem(Self.yaml)
        let plain = system.logger(label: "api")
        var tagged = plain
        tagged[metadataKey: "user"] = "u7"
        tagged.logLevel = .error
        var cleared = tagged
        cleared[metadataKey: "user"] = nil
        plain.info("plain")
        tagged.info("dropped")
        tagged.error("tagged")
        cleared.error("cleared")
        #expect(lines(system) == ["api INFO plain", "api ERROR tagged user=u7", "api ERROR cleared"])
        #expect(plain.logLevel == .trace && tagged.logLevel == .error && cleared.logLevel == .error)
    }

    /// The handler reads a message's bytes where swift-log keeps them (``OctopusLogHandler/messageIsOneString``):
    /// messages of every kind of string (empty, stored inline up to 15 bytes, out of line, literals, made by
    /// Foundation, from a substring, non-ASCII) reach the file as they are.
    @Test func messagesAreReadInPlaceWhateverTheirString() throws {
        #expect(OctopusLogHandler.messageIsOneString)
        let dir = try TemporaryDirectory()
        let path = dir.file("messages.log")
        let system = try fileSystem(path)
        let logger = system.logger(label: "api")
        let long = String(repeating: "long ", count: 40)
        let messages: [String] = [
            "", "a", "fifteen bytes..", "sixteen bytes...", "ü", "ümlaut and 日本語 and 🐙", long,
            String(long.dropFirst(3).prefix(30)), String(format: "%@ %d", "made by Foundation", 42),
            NSString(string: "an NSString's text").description,
        ]
        for message in messages { logger.info("\(message)") }
        logger.info("a string literal")
        logger.info(Logger.Message(stringLiteral: long))
        system.shutdownNow()
        #expect(try fileLines(path) == (messages + ["a string literal", long]).map { Substring($0) })
    }

    @Test func loggerLevelOverridesOnlyThatLogger() throws {
        let system = try recordingSystem(Self.yaml)
        var quiet = system.logger(label: "api")
        quiet.logLevel = .error
        let loud = system.logger(label: "api")
        quiet.info("dropped")
        loud.info("kept")
        #expect(quiet.logLevel == .error)
        #expect(loud.logLevel == .trace)
        #expect(lines(system) == ["api INFO kept"])
    }

    @Test func logLevelReflectsTheCategory() throws {
        let system = try recordingSystem(Self.yaml)
        let logger = system.logger(label: "api")
        #expect(logger.logLevel == .trace)
        system.setLevel(.warn, for: "api")
        #expect(logger.logLevel == .warning)
        system.setLevel(.off, for: "api")
        #expect(logger.logLevel == .critical)
        logger.critical("dropped even though swift-log lets critical through")
        #expect(lines(system).isEmpty)
    }

    @Test func sourceLocationReachesTheRecord() throws {
        let system = try recordingSystem(Self.yaml)
        system.logger(label: "api").info("here")
        let record = try #require((system.appender(named: "all") as? RecordingAppender)?.records.first)
        #expect(record.file.hasSuffix("CategoryTests.swift"))
        #expect(record.function.hasPrefix("sourceLocationReachesTheRecord"))
        #expect(record.line > 0)
        #expect(record.timestamp == fixedTime)
    }

    @Test func errorsAttachedToEventsAreKept() throws {
        struct Failure: Error {}
        let system = try recordingSystem(Self.yaml)
        system.logger(label: "api").error("failed", error: Failure())
        let record = try #require((system.appender(named: "all") as? RecordingAppender)?.records.first)
        #expect(record.error is Failure)
    }
}
