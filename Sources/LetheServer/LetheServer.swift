import Hummingbird
import HummingbirdTLS
import LetheCatalog
import LetheCore
import LetheEngine
import LetheNotify
import LetheRuntime
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

// Issue 14, phase 0: the module's dependencies are declared; the HTTP API comes with part B.
