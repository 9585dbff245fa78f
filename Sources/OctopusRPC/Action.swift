public import NIOCore
public import Foundation
import Synchronization

/// A typed action: the declaration both sides share, so that inputs and outputs are checked at compile time.
///
/// ```swift
/// struct Add: RPCAction {
///     struct Input: Codable { var a, b: Int }
///     typealias Output = Int
///     static let name = "add"
/// }
/// handlers.register(Add.self) { input, _ in input.a + input.b }
/// let sum = try await branch.call(Add.self, .init(a: 1, b: 2))
/// ```
public protocol RPCAction {
    associatedtype Input: Codable & Sendable
    associatedtype Output: Codable & Sendable
    static var name: String { get }
}

/// What a handler knows about the call it serves.
public struct RPCCallContext: Sendable {
    /// The action's name.
    public var action: String
    /// Who called: a branch id, the master's id, or nil on a plain connection.
    public var caller: String?
    /// When the caller gives up; a handler that can stop early should look at it.
    public var deadline: ContinuousClock.Instant?

    public init(action: String, caller: String? = nil, deadline: ContinuousClock.Instant? = nil) {
        self.action = action
        self.caller = caller
        self.deadline = deadline
    }
}

/// What the receiver of a one-way message knows about it.
public struct RPCMessageContext: Sendable {
    /// The message's name.
    public var name: String
    /// Who sent it: the bound branch or master id.
    public var sender: String?

    public init(name: String, sender: String?) {
        self.name = name
        self.sender = sender
    }
}

/// A table of handlers by action name. Typed handlers decode their input and encode their output with the
/// table's codec; raw ones see the bodies; JSON ones see `Data` (for tools that know actions only by name).
///
/// A handler is either `async` or plain. A plain (non-`async`) closure is an *immediate* handler: a request for it
/// is answered in place, on the connection's event loop, without creating a task (the cheapest way to serve; it must
/// not block). Swift picks the plain overload for a closure that does not `await`.
public final class RPCHandlers: Sendable {
    /// Runs on the executor of whoever calls it (`nonisolated(nonsending)`): on the connection's event loop when a
    /// request is served in place, no executor switch on the way in.
    public typealias RawHandler = nonisolated(nonsending) @Sendable (ByteBuffer, RPCCallContext) async throws
        -> ByteBuffer
    /// A handler that answers without suspending.
    public typealias ImmediateRawHandler = @Sendable (ByteBuffer, RPCCallContext) throws -> ByteBuffer

    struct Entry: Sendable {
        let run: RawHandler
        let immediate: ImmediateRawHandler?

        func route(_ context: RPCCallContext) -> RPCRoute {
            if let immediate { return .immediate(immediate, context) }
            return .handler(run, context)
        }
    }

    /// Receives a one-way message; runs on the connection's event loop, so it must not block (hand long work to a
    /// task).
    public typealias MessageHandler = @Sendable (ByteBuffer, RPCMessageContext) -> Void

    public let codec: any RPCCodec
    private let table = Mutex<[String: Entry]>([:])
    private let messages = Mutex<[String: MessageHandler]>([:])

    public init(codec: any RPCCodec = JSONCodec()) {
        self.codec = codec
    }

    /// Registers (or replaces) the handler of a typed action.
    public func register<A: RPCAction>(
        _ action: A.Type,
        _ handler: nonisolated(nonsending) @escaping @Sendable (A.Input, RPCCallContext) async throws -> A.Output
    ) {
        let codec = self.codec
        let name = A.name
        registerRaw(name) { body, context in
            let input = try codec.decodeBody(A.Input.self, from: body, action: name)
            return try codec.encodeBody(try await handler(input, context), action: name, headroom: Frame.headerSize)
        }
    }

    /// Registers (or replaces) the handler of a typed action that needs no context.
    public func register<A: RPCAction>(
        _ action: A.Type, _ handler: nonisolated(nonsending) @escaping @Sendable (A.Input) async throws -> A.Output
    ) {
        register(action) { input, _ in try await handler(input) }
    }

    /// Registers (or replaces) an immediate handler of a typed action (see the type's documentation).
    public func register<A: RPCAction>(
        _ action: A.Type, _ handler: @escaping @Sendable (A.Input, RPCCallContext) throws -> A.Output
    ) {
        let codec = self.codec
        let name = A.name
        registerRaw(name) { body, context in
            let input = try codec.decodeBody(A.Input.self, from: body, action: name)
            return try codec.encodeBody(try handler(input, context), action: name, headroom: Frame.headerSize)
        }
    }

    /// Registers (or replaces) an immediate handler of a typed action that needs no context.
    public func register<A: RPCAction>(_ action: A.Type, _ handler: @escaping @Sendable (A.Input) throws -> A.Output) {
        register(action) { input, _ in try handler(input) }
    }

    /// Registers a handler that sees the raw bodies.
    public func registerRaw(_ name: String, _ handler: @escaping RawHandler) {
        table.withLock { $0[name] = Entry(run: handler, immediate: nil) }
    }

    /// Registers an immediate handler that sees the raw bodies.
    public func registerRaw(_ name: String, _ handler: @escaping ImmediateRawHandler) {
        table.withLock { $0[name] = Entry(run: { body, context in try handler(body, context) }, immediate: handler) }
    }

    /// Registers a handler of JSON `Data` (meaningful with the JSON codec).
    public func registerJSON(
        _ name: String, _ handler: nonisolated(nonsending) @escaping @Sendable (Data, RPCCallContext) async throws -> Data
    ) {
        registerRaw(name) { body, context in
            let output = try await handler(Data(body.readableBytesView), context)
            return ByteBuffer(bytes: output)
        }
    }

    public func remove(_ name: String) {
        table.withLock { _ = $0.removeValue(forKey: name) }
    }

    /// Registers (or replaces) the receiver of one-way messages named `name` (see `RPCMaster.send` and
    /// `RPCBranch.send`). A message nobody receives is dropped with a debug line.
    public func onMessage(_ name: String, _ handler: @escaping MessageHandler) {
        messages.withLock { $0[name] = handler }
    }

    func messageHandler(for name: String) -> MessageHandler? {
        messages.withLock { $0[name] }
    }

    public func handler(for name: String) -> RawHandler? {
        table.withLock { $0[name]?.run }
    }

    /// The handler of `name` when it answers without suspending (see `register` with a non-async closure).
    package func immediateHandler(for name: String) -> ImmediateRawHandler? {
        table.withLock { $0[name]?.immediate }
    }

    func entry(for name: String) -> Entry? {
        table.withLock { $0[name] }
    }

    /// The names served here, sorted.
    public var actions: [String] {
        table.withLock { $0.keys.sorted() }
    }
}

/// What calls actions: a master and a branch route differently (see each) but encode and decode alike.
public protocol RPCCaller: Sendable {
    /// The handlers served here; their codec encodes the inputs of typed calls and decodes the outputs.
    var handlers: RPCHandlers { get }
    /// Calls an action with an encoded body and returns the encoded answer.
    nonisolated(nonsending) func callRaw(
        _ action: String, body: consuming ByteBuffer, on target: String?, timeout: Duration?
    ) async throws -> ByteBuffer
}

extension RPCCaller {
    /// Calls a typed action; `on` names the branch (or the master's id) that must run it. Like `callRaw`, it runs
    /// on the caller's executor (`nonisolated(nonsending)`): no executor switch per call.
    nonisolated(nonsending) public func call<A: RPCAction>(
        _ action: A.Type, _ input: A.Input, on target: String? = nil, timeout: Duration? = nil
    ) async throws -> A.Output {
        let codec = handlers.codec
        // Room for the frame header and the action's name in front of the body (see `RPCConnection.encode`).
        let headroom = Frame.headerSize + (target == nil ? A.name.utf8.count : 0)
        let body = try codec.encodeBody(input, action: A.name, headroom: headroom)
        let output = try await callRaw(A.name, body: body, on: target, timeout: timeout)
        return try codec.decodeBody(A.Output.self, from: output, action: A.name)
    }

    /// Calls an action by name with a JSON body (for tools); returns the JSON answer.
    public func callJSON(_ name: String, _ json: Data, on target: String? = nil, timeout: Duration? = nil)
        async throws -> Data
    {
        Data(try await callRaw(name, body: ByteBuffer(bytes: json), on: target, timeout: timeout).readableBytesView)
    }
}
