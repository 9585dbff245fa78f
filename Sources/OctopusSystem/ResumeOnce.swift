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
