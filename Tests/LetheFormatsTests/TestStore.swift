import LetheTesting

/// These tests' store: the test kit's fault-injecting store over memory (`set`/`get` reach the objects directly).
typealias TestStore = FaultInjectingStore

extension FaultInjectingStore {
    func commitCount() -> Int { commits }
}
