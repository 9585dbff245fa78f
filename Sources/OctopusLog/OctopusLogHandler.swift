public import Logging
import Synchronization

/// The swift-log `LogHandler` behind every `Logger` once ``LogSystem/bootstrap(metadataProvider:)`` has run.
///
/// The logger's label is its category. The level check is one atomic load and a compare; the record is built only
/// for events that pass, and each appender renders it on the calling thread.
///
/// Setting `logger.logLevel` overrides the category's level for that `Logger` value only (swift-log's value
/// semantics); otherwise the logger follows its category, including changes made with
/// ``LogSystem/setLevel(_:for:)``.
public struct OctopusLogHandler: LogHandler {
    let node: CategoryNode
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private var levelOverride: LogLevel?

    init(node: CategoryNode, metadataProvider: Logger.MetadataProvider?) {
        self.node = node
        self.metadataProvider = metadataProvider
    }

    /// The category this handler logs to.
    public var category: String { node.name }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public var logLevel: Logger.Level {
        get {
            if let levelOverride {
                return node.table.swiftLogThreshold(for: levelOverride.value) ?? .critical
            }
            return Logger.Level(ordinal: node.swiftLogOrdinal.load(ordering: .relaxed))
        }
        set {
            levelOverride = node.table.level(for: newValue)
        }
    }

    public func log(event: LogEvent) {
        let level = node.table.level(for: event.level)
        let threshold = levelOverride?.value ?? node.threshold.load(ordering: .relaxed)
        guard level.value >= threshold else { return }
        if let writers = node.eventWriters {
            let timestamp = node.clock.now()
            var message = event.message.description
            message.withUTF8 { message in
                let parts = EventParts(
                    level: level, category: node.name, message: message, timestamp: timestamp, file: event.file,
                    function: event.function, line: event.line)
                for index in writers.indices { writers[index].append(parts, level: event.level) }
            }
            return
        }
        var merged = metadata
        if let provided = metadataProvider?.get(), !provided.isEmpty {
            merged.merge(provided) { _, new in new }
        }
        if let explicit = event.metadata, !explicit.isEmpty {
            merged.merge(explicit) { _, new in new }
        }
        let record = LogRecord(
            level: level,
            category: node.name,
            message: event.message.description,
            metadata: merged,
            error: event.error,
            timestamp: node.clock.now(),
            file: event.file,
            function: event.function,
            line: event.line
        )
        let appenders = node.unretainedAppenders
        for index in appenders.indices { appenders[index].append(record) }
    }
}
