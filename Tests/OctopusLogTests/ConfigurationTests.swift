import Foundation
import Logging
import OctopusConfig
import Testing

@testable import OctopusLog

/// The issues of a configuration that must not load.
func issues(_ yaml: String) -> [ConfigIssue] {
    do {
        _ = try LogConfiguration(yaml: yaml)
        return []
    } catch {
        return error.issues
    }
}

@Suite struct ConfigurationErrorTests {
    @Test func unknownKeyWithDidYouMean() {
        let found = issues(
            """
            log:
              appenders:
                app: { type: file, filename: a.log, "maxLogSize ": 10 }
              categories: { default: { appenders: [app], level: info } }
            """)
        #expect(found.map(\.message) == [#"unknown key "maxLogSize " at log.appenders.app; did you mean "maxLogSize"?"#])
        #expect(found.first?.path == "log.appenders.app.maxLogSize ")
        #expect(found.first?.origin?.line == 3)
    }

    @Test func typosInKeysAreSuggested() {
        let found = issues(
            """
            log:
              apenders: {}
              categories: { default: { appenders: [x], level: info, inherrit: false } }
            """)
        let messages = found.map(\.message)
        #expect(messages.contains(#"unknown key "apenders" at log; did you mean "appenders"?"#))
        #expect(messages.contains(#"unknown key "inherrit" at log.categories.default; did you mean "inherit"?"#))
        #expect(messages.contains(#"missing key "appenders" at log (a list of strings)"#) || messages.contains { $0.hasPrefix(#"missing key "appenders" at log"#) })
    }

    @Test func undefinedAppenderInACategory() {
        let found = issues(
            """
            log:
              appenders: { out: { type: stdout } }
              categories:
                default: { appenders: [out], level: info }
                db: { appenders: [out, otu] }
            """)
        #expect(found.map(\.path) == ["log.categories.db.appenders[1]"])
        #expect(found.first?.message == #"category "db" names appender "otu", which is not defined at log.categories.db.appenders[1]; did you mean "out"?"#)
    }

    @Test func missingDefaultCategory() {
        let found = issues(
            """
            log:
              appenders: { out: { type: stdout } }
              categories: { app: { appenders: [out], level: info } }
            """)
        #expect(found.map(\.path) == ["log.categories.default"])
        #expect(found.first?.message == #"missing category "default" at log.categories (every configuration needs one)"#)
    }

    @Test func unknownLevel() {
        let found = issues(
            """
            log:
              appenders: { out: { type: stdout, syncLevel: eror } }
              categories: { default: { appenders: [out], level: verbose } }
            """)
        #expect(Set(found.map(\.path)) == ["log.categories.default.level", "log.appenders.out.syncLevel"])
        #expect(found.contains { $0.message.hasPrefix(#"unknown level "verbose" at log.categories.default.level; levels are ALL, TRACE"#) })
    }

    @Test func malformedSizes() {
        let found = issues(
            """
            log:
              appenders:
                a: { type: file, filename: a.log, maxLogSize: 10X }
                b: { type: file, filename: b.log, maxLogSize: "-5" }
                c: { type: file, filename: c.log, bufferSize: 12 }
              categories: { default: { appenders: [a, b, c], level: info } }
            """)
        #expect(found.map(\.path) == ["log.appenders.a.maxLogSize", "log.appenders.b.maxLogSize", "log.appenders.c.bufferSize"])
        #expect(found.first?.message == #"malformed size "10X" at log.appenders.a.maxLogSize; expected a number of bytes, or a number followed by K, M or G (at least 1)"#)
    }

    @Test func sizesAreLog4jsSizes() {
        #expect(LogConfiguration.parseSize("10M") == 10_485_760)
        #expect(LogConfiguration.parseSize("1k") == 1024)
        #expect(LogConfiguration.parseSize("2 G") == 2 * 1_073_741_824)
        #expect(LogConfiguration.parseSize("4096") == 4096)
        #expect(LogConfiguration.parseSize("1.5M") == nil)
        #expect(LogConfiguration.parseSize("M") == nil)
        #expect(LogConfiguration.parseSize("10MB") == nil)
    }

    @Test func badPatternToken() {
        let found = issues(
            """
            log:
              appenders: { out: { type: stdout, layout: { type: pattern, pattern: "%d %Q %m" } } }
              categories: { default: { appenders: [out], level: info } }
            """)
        #expect(found.map(\.path) == ["log.appenders.out.layout.pattern"])
        #expect(found.first?.message == #"invalid pattern at log.appenders.out.layout.pattern: unknown token "%Q" at offset 3 in pattern "%d %Q %m""#)
    }

    @Test func unknownTypesAndFilterProblems() {
        let found = issues(
            """
            log:
              appenders:
                a: { type: stdot }
                b: { type: logLevelFilter, appender: nowhere, level: error }
                c: { type: categoryFilter, appender: d, exclude: x }
                d: { type: categoryFilter, appender: c, exclude: y }
                e: { type: stdout, layout: { type: fancy } }
                f: { type: noLogFilter, appender: e, exclude: ["(unclosed"] }
              categories: { default: { appenders: [e], level: info } }
            """)
        let byPath = Dictionary(found.map { ($0.path, $0.message) }, uniquingKeysWith: { a, _ in a })
        #expect(byPath["log.appenders.a.type"] == #"appender "a" has type "stdot", which Octopus does not have, at log.appenders.a.type; did you mean "stdout"?"#)
        #expect(byPath["log.appenders.b.appender"]?.hasPrefix(#"appender "b" passes events to appender "nowhere", which is not defined"#) == true)
        #expect(byPath["log.appenders.c.appender"]?.contains("cycle (c → d → c)") == true)
        #expect(byPath["log.appenders.e.layout.type"]?.hasPrefix(#"unknown layout type "fancy" at log.appenders.e.layout.type"#) == true)
        #expect(byPath["log.appenders.f.exclude[0]"] == #"invalid regular expression "(unclosed" at log.appenders.f.exclude[0]"#)
    }

    @Test func everyErrorIsReportedNotJustTheFirst() {
        let found = issues(
            """
            log:
              appenders:
                app: { type: file, filename: a.log, maxLogSize: huge, bakups: 3, mode: "999" }
              levels: { "9bad": { value: 1 }, LOUD: { value: x, colour: pink } }
              categories: { default: { appenders: [app, ghost], level: nope } }
            """)
        #expect(found.count >= 6)
        let paths = Set(found.map(\.path))
        for expected in [
            "log.appenders.app.maxLogSize", "log.appenders.app.bakups", "log.appenders.app.mode", "log.levels.9bad",
            "log.levels.LOUD.value", "log.categories.default.appenders[1]", "log.categories.default.level",
        ] {
            #expect(paths.contains(expected), "missing \(expected) in \(paths)")
        }
    }

    @Test func yamlSyntaxErrorsSayWhere() {
        let found = issues("log:\n  appenders: [unclosed\n")
        #expect(found.count == 1)
        #expect(found.first?.message.hasPrefix("<string>:") == true)
        #expect(found.first?.message.contains("invalid YAML/JSON") == true)
    }

    @Test func wrongKinds() {
        let found = issues(
            """
            log:
              appenders: { out: { type: stdout, overflow: 3 } }
              categories: { default: { appenders: out, level: [info] } }
            """)
        #expect(found.contains { $0.message == "unknown overflow policy \"3\" at log.appenders.out.overflow; expected block or drop" })
        #expect(found.contains { $0.message == "expected a string at log.categories.default.level, found a list" })
    }
}

@Suite struct ConfigurationLoadingTests {
    /// A log4js configuration, as a Node project has it (JSON, log4js's own keys).
    static let log4jsJSON = """
        {
          "appenders": {
            "out": { "type": "stdout", "layout": { "type": "coloured" } },
            "console": { "type": "console" },
            "app": { "type": "file", "filename": "LOGDIR/app.log", "maxLogSize": 10485760, "backups": 3,
                     "compress": true, "keepFileExt": true, "mode": 384,
                     "layout": { "type": "pattern", "pattern": "%d{ISO8601_WITH_TZ_OFFSET} %5.5p %c{2} %x{user} - %m%n",
                                 "tokens": { "user": "alice" } } },
            "errorFile": { "type": "file", "filename": "LOGDIR/errors.log", "layout": { "type": "basic" } },
            "errors": { "type": "logLevelFilter", "appender": "errorFile", "level": "error", "maxLevel": "fatal" },
            "notHealth": { "type": "noLogFilter", "exclude": ["health"], "appender": "app" },
            "notNoisy": { "type": "categoryFilter", "exclude": ["noisy"], "appender": "notHealth" },
            "mem": { "type": "recording" }
          },
          "categories": {
            "default": { "appenders": ["notNoisy", "errors", "mem"], "level": "info" },
            "http": { "appenders": ["out"], "level": "debug", "enableCallStack": true },
            "quiet": { "appenders": ["errors"], "level": "OFF", "inherit": false }
          },
          "levels": { "NOTICE": { "value": 20001, "colour": "cyan" } },
          "disableClustering": true
        }
        """

    @Test func aLog4jsJSONConfigurationLoadsUnchanged() throws {
        let dir = try TemporaryDirectory()
        let text = Self.log4jsJSON.replacingOccurrences(of: "LOGDIR", with: dir.path)
        let configuration = try LogConfiguration(yaml: text)
        #expect(configuration.appenders.count == 8)
        #expect(configuration.categories["http"]?.level == .debug)
        #expect(configuration.levels.map(\.name) == ["NOTICE"])
        guard case .file(let options)? = configuration.appenders["app"]?.kind else {
            Issue.record("app is not a file appender")
            return
        }
        #expect(options.maxLogSize == 10_485_760 && options.backups == 3 && options.compress && options.keepFileExt)
        #expect(configuration.appenders["app"]?.writer.mode == 0o600)
        // And it runs: lines reach the file through the two filters.
        let system = try LogSystem(configuration)
        system.logger(label: "web").info("served")
        system.logger(label: "web").info("health ok")
        system.logger(label: "noisy").info("noise")
        system.logger(label: "web").error("broken")
        system.shutdownNow()
        let app = try String(contentsOfFile: dir.path + "/app.log", encoding: .utf8)
        #expect(app.contains(" INFO web alice - served\n\n"))
        #expect(!app.contains("health") && !app.contains("noise"))
        let errors = try String(contentsOfFile: dir.path + "/errors.log", encoding: .utf8)
        #expect(errors.hasSuffix("[ERROR] web - broken\n"))
    }

    @Test func environmentOverlayIsADeepMerge() throws {
        let dir = try TemporaryDirectory()
        try dir.write("config.default.yaml", """
            log:
              appenders:
                out: { type: stdout, layout: { type: basic } }
                mem: { type: recording }
              categories:
                default: { appenders: [out], level: info }
                db: { level: debug }
            """)
        try dir.write("config.production.yaml", """
            log:
              categories:
                default: { level: warn }
            """)
        let production = try LogConfiguration.load(directory: dir.path, environment: "production")
        #expect(production.categories["default"]?.level == .warn)
        #expect(production.categories["default"]?.appenders == ["out"])  // kept from the default file
        #expect(production.categories["db"]?.level == .debug)
        let local = try LogConfiguration.load(directory: dir.path, environment: "local")  // no overlay file
        #expect(local.categories["default"]?.level == .info)
    }

    @Test func overlayErrorsNameTheirFileAndLine() throws {
        let dir = try TemporaryDirectory()
        try dir.write("config.default.yaml", "log:\n  appenders: { out: { type: stdout } }\n  categories: { default: { appenders: [out], level: info } }\n")
        try dir.write("config.test.yaml", "log:\n  categories:\n    default:\n      levl: debug\n")
        #expect {
            try LogConfiguration.load(directory: dir.path, environment: "test")
        } throws: { error in
            guard let error = error as? ConfigurationError, let issue = error.issues.first else { return false }
            return issue.message == #"unknown key "levl" at log.categories.default; did you mean "level"?"#
                && issue.origin?.description == dir.path + "/config.test.yaml:4"
        }
    }

    @Test func missingDirectoryOrDefaultFile() throws {
        #expect(throws: ConfigurationError.self) { try LogConfiguration.load(directory: "/nonexistent/octopus", environment: "x") }
        let dir = try TemporaryDirectory()
        try dir.write("config.local.yaml", "log: {}\n")
        #expect(throws: ConfigurationError.self) { try LogConfiguration.load(directory: dir.path, environment: "local") }
    }

    @Test func theRepositoryDefaultConfigurationIsValid() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let configuration = try LogConfiguration.load(directory: root.path + "/config", environment: "local")
        #expect(configuration.categories["default"]?.appenders == ["console", "app", "errors"])
        #expect(configuration.validate().isEmpty)
    }
}

/// A fresh directory under the system temporary directory, removed when the value is released.
final class TemporaryDirectory: @unchecked Sendable {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "octopus-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func write(_ name: String, _ text: String) throws {
        try text.write(toFile: path + "/" + name, atomically: true, encoding: .utf8)
    }

    func file(_ name: String) -> String { path + "/" + name }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}
