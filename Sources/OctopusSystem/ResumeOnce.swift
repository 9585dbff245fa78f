import Synchronization

/// A value delivered once to one waiter, whichever comes first.
package final class ResumeOnce<Value: Sendable>: Sendable {
    private enum State {
        case empty
        case waiting(CheckedContinuation<Value, Never>)
        case ready(Value)
        case done
    }

    private let state = Mutex<State>(.empty)

    package init() {}

    package func resume(_ value: Value) {
        let waiter: CheckedContinuation<Value, Never>? = state.withLock { state in
            switch state {
            case .empty:
                state = .ready(value)
                return nil
            case .waiting(let continuation):
                state = .done
                return continuation
            case .ready, .done:
                return nil
            }
        }
        waiter?.resume(returning: value)
    }

    /// Whether a value has been delivered.
    package var isResolved: Bool {
        state.withLock { state in
            switch state {
            case .ready, .done: true
            case .empty, .waiting: false
            }
        }
    }

    package var value: Value {
        get async {
            await withCheckedContinuation { continuation in
                let ready: Value? = state.withLock { state in
                    if case .ready(let value) = state {
                        state = .done
                        return value
                    }
                    state = .waiting(continuation)
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        }
    }
}

/// The value of `operation`, or nil when `limit` passes first. The operation is not waited for past the limit (it
/// may not be cancellable, as `Task.value` is not): it is cancelled and left to end on its own, which a task group
/// could not do (a group waits for every child before it returns).
package func value<T: Sendable>(
    of operation: @escaping @Sendable () async -> T, orNilAfter limit: Duration
) async -> T? {
    let outcome = ResumeOnce<T?>()
    let work = Task { outcome.resume(await operation()) }
    let timer = Task {
        try? await Task.sleep(for: limit)
        outcome.resume(nil)
    }
    let result = await outcome.value
    timer.cancel()
    if result == nil { work.cancel() }
    return result
}
