// Shared by the verification tests (TrustTests, IndexCostVerifyTests, CrashSafetyTests).

/// One JSON Lines event of user `u` (`user.id`), numbered `n`.
func userEvent(_ u: String, _ n: Int) -> String { #"{"n":\#(n),"user":{"id":"\#(u)"}}"# + "\n" }

/// Two JSON Lines datasets: `raw` (subject `user.id`) and `other` (subject `uid`).
let rawAndOtherDatasets = """
    lake: ./lake
    datasets:
      - name: raw
        path: raw
        format: jsonl
        subject: user.id
      - name: other
        path: other
        format: jsonl
        subject: uid
    """
