public import Logging
import Synchronization

/// The swift-log `LogHandler` behind every `Logger` once ``LogSystem/bootstrap(metadataProvider:)`` has run.
///
/// The logger's label is its category. The level check is one atomic load and a compare; the record is built only
/// for events that pass, and each appender renders it on the calling thread (or, for a writer whose layout reads only
/// the event's time and message, hands those to the writer, which renders the line).
///
/// Setting `logger.logLevel` overrides the category's level for that `Logger` value only (swift-log's value
/// semantics); otherwise the logger follows its category, including changes made with
/// ``LogSystem/setLevel(_:for:)``.
///
/// Two words, so that swift-log, which copies the handler out of the `Logger` on every call, copies it in place
/// with no box and no reference count: the category node is held unretained (a bootstrapped system is kept by
/// swift-log, and it keeps its nodes, for the life of the process), and what few handlers have (metadata, a
/// metadata provider, a level override, the node's owner for a system that is not bootstrapped) is out of line,
/// `nil` when there is none.
public struct OctopusLogHandler: LogHandler {
    private let unretainedNode: Unmanaged<CategoryNode>
    private var extras: Extras?

    /// Immutable; a change makes a new one.
    private final class Extras: Sendable {
        let owner: CategoryNode?
        let metadata: Logger.Metadata
        let metadataProvider: Logger.MetadataProvider?
        let levelOverride: LogLevel?

        private init(
            owner: CategoryNode?, metadata: Logger.Metadata, metadataProvider: Logger.MetadataProvider?,
            levelOverride: LogLevel?
        ) {
            self.owner = owner
            self.metadata = metadata
            self.metadataProvider = metadataProvider
            self.levelOverride = levelOverride
        }

        /// `nil` when there is nothing to hold.
        static func make(
            owner: CategoryNode?, metadata: Logger.Metadata, metadataProvider: Logger.MetadataProvider?,
            levelOverride: LogLevel?
        ) -> Extras? {
            if owner == nil && metadata.isEmpty && metadataProvider == nil && levelOverride == nil { return nil }
            return Extras(
                owner: owner, metadata: metadata, metadataProvider: metadataProvider, levelOverride: levelOverride)
        }
    }

    /// - Parameter retainingNode: false only when the node's system lives as long as the process (bootstrapped).
    init(node: CategoryNode, retainingNode: Bool, metadataProvider: Logger.MetadataProvider?) {
        self.unretainedNode = .passUnretained(node)
        self.extras = Extras.make(
            owner: retainingNode ? node : nil, metadata: [:], metadataProvider: metadataProvider, levelOverride: nil)
    }

    @inline(__always)
    func withNode<Result>(_ body: (CategoryNode) -> Result) -> Result {
        unretainedNode._withUnsafeGuaranteedRef(body)
    }

    private mutating func change(
        metadata: Logger.Metadata? = nil, metadataProvider: Logger.MetadataProvider?? = nil,
        levelOverride: LogLevel?? = nil
    ) {
        extras = Extras.make(
            owner: extras?.owner, metadata: metadata ?? self.metadata,
            metadataProvider: metadataProvider ?? self.metadataProvider,
            levelOverride: levelOverride ?? extras?.levelOverride)
    }

    /// The category this handler logs to.
    public var category: String { withNode { $0.name } }

    public var metadata: Logger.Metadata {
        get { extras?.metadata ?? [:] }
        set { change(metadata: newValue) }
    }

    public var metadataProvider: Logger.MetadataProvider? {
        get { extras?.metadataProvider }
        set { change(metadataProvider: .some(newValue)) }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { extras?.metadata[key] }
        set {
            var metadata = self.metadata
            metadata[key] = newValue
            change(metadata: metadata)
        }
    }

    public var logLevel: Logger.Level {
        get {
            withNode { node in
                if let levelOverride = extras?.levelOverride {
                    return node.table.swiftLogThreshold(for: levelOverride.value) ?? .critical
                }
                return Logger.Level(ordinal: node.swiftLogOrdinal.load(ordering: .relaxed))
            }
        }
        set {
            change(levelOverride: .some(withNode { $0.table.level(for: newValue) }))
        }
    }

    /// Whether the handler has metadata or a metadata provider, which a line merges with its own.
    var hasMetadataToMerge: Bool {
        guard let extras else { return false }
        return !extras.metadata.isEmpty || extras.metadataProvider != nil
    }

    /// Whether an event of `level` passes this logger's threshold (its override, else its category's).
    @inline(__always)
    func passes(_ level: Logger.Level, node: CategoryNode) -> Bool {
        node.levelValues[level.ordinal] >= (extras?.levelOverride?.value ?? node.threshold.load(ordering: .relaxed))
    }

    public func log(event: LogEvent) {
        withNode { log(event, node: $0) }
    }

    @inline(__always)
    private func log(_ event: LogEvent, node: CategoryNode) {
        guard passes(event.level, node: node) else { return }
        let levelValue = node.levelValues[event.level.ordinal]
        if let writers = node.eventWriters {
            let timestamp = node.clock.now()
            var suffix: EventSuffix?
            if node.eventWritersPrintMetadata, extras != nil || event.metadata != nil || event.error != nil {
                let metadata = mergedMetadata(event)
                if !metadata.isEmpty || event.error != nil { suffix = EventSuffix(metadata: metadata, error: event.error) }
            }
            Self.withMessageBytes(event, inPlace: node.messageInPlace) { message in
                let parts = EventParts(
                    levelValue: levelValue, message: message, timestamp: timestamp, file: event.file,
                    function: event.function, line: event.line)
                for index in writers.indices { writers[index].append(parts, level: event.level, suffix: suffix) }
            }
            return
        }
        let level = node.table.level(for: event.level)
        let record = LogRecord(
            level: level,
            category: node.name,
            message: event.message.description,
            metadata: mergedMetadata(event),
            error: event.error,
            timestamp: node.clock.now(),
            file: event.file,
            function: event.function,
            line: event.line
        )
        let appenders = node.unretainedAppenders
        for index in appenders.indices { appenders[index].append(record) }
    }

    /// Calls `body` with the UTF-8 bytes of the event's message, read where they are: `Logger.Message` holds its
    /// text in its one stored property, a `String`, which is borrowed in place (no copy of the message handed out by
    /// `description`, and so no retain and release of its storage, locked instructions both, on every line). Where
    /// `Logger.Message` is not laid out that way (`inPlace` false: see ``messageIsOneString``), through `description`.
    @inline(__always)
    static func withMessageBytes<Result>(
        _ event: borrowing LogEvent, inPlace: Bool, _ body: (UnsafeBufferPointer<UInt8>) -> Result
    ) -> Result {
        guard inPlace else {
            var message = event.message.description
            return message.withUTF8(body)
        }
        return withUnsafeBytes(of: event.message) { raw in
            // `withUTF8` changes a string only to make its bytes contiguous; Swift's own strings on Linux always are.
            UnsafeMutablePointer(mutating: raw.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: String.self))
                .pointee.withUTF8(body)
        }
    }

    /// Whether `Logger.Message` is laid out as the one `String` it stores (checked once: its size, and that its
    /// bytes read as a string give its `description`). Each ``CategoryNode`` keeps the answer, where a line reads it
    /// without the check every access to a global makes.
    static let messageIsOneString: Bool = {
        guard MemoryLayout<Logger.Message>.size == MemoryLayout<String>.size,
            MemoryLayout<Logger.Message>.alignment == MemoryLayout<String>.alignment
        else { return false }
        let samples: [Logger.Message] = ["", "short", "a message longer than fifteen bytes, stored out of line ü"]
        return samples.allSatisfy { sample in
            withUnsafeBytes(of: sample) { $0.load(as: String.self) } == sample.description
        }
    }()

    /// The handler's metadata, then the provider's, then the call's, later keys winning.
    private func mergedMetadata(_ event: LogEvent) -> Logger.Metadata {
        var merged = metadata
        if let provided = metadataProvider?.get(), !provided.isEmpty {
            merged.merge(provided) { _, new in new }
        }
        if let explicit = event.metadata, !explicit.isEmpty {
            merged.merge(explicit) { _, new in new }
        }
        return merged
    }
}
