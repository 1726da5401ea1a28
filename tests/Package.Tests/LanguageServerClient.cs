using System;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.IO;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading;
using System.Threading.Tasks;

namespace ModelParallel.Tests
{
    /// <summary>
    /// A minimal Language Server Protocol client over a server's stdin/stdout (JSON-RPC with Content-Length framing), as
    /// an editor uses one: requests with ids, notifications, and answers to the server's own requests (configuration with
    /// analyzers enabled, capability registrations).
    /// </summary>
    internal sealed class LanguageServerClient : IDisposable
    {
        private readonly Process process;
        private readonly Stream input;
        private readonly ConcurrentDictionary<int, TaskCompletionSource<JsonNode?>> pending = new();
        private readonly StringBuilder log = new();
        private readonly Task reader;
        private int nextId;

        public LanguageServerClient(ProcessStartInfo start)
        {
            start.RedirectStandardInput = start.RedirectStandardOutput = start.RedirectStandardError = true;
            start.UseShellExecute = false;
            process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {start.FileName}");
            input = process.StandardInput.BaseStream;
            process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.AppendLine("stderr: " + e.Data); };
            process.BeginErrorReadLine();
            reader = Task.Run(ReadMessages);
        }

        /// <summary>What the server said besides answers (log messages, stderr), for failure messages.</summary>
        public string Log
        {
            get { lock (log) return log.ToString(); }
        }

        public async Task<JsonNode?> Request(string method, JsonNode? parameters, TimeSpan limit)
        {
            int id = Interlocked.Increment(ref nextId);
            var answer = new TaskCompletionSource<JsonNode?>(TaskCreationOptions.RunContinuationsAsynchronously);
            pending[id] = answer;
            Send(new JsonObject { ["jsonrpc"] = "2.0", ["id"] = id, ["method"] = method, ["params"] = parameters });
            var finished = await Task.WhenAny(answer.Task, Task.Delay(limit));
            if (finished != answer.Task) throw new TimeoutException($"{method} got no answer within {limit.TotalSeconds} s.\n{Log}");
            return await answer.Task;
        }

        public void Notify(string method, JsonNode? parameters) =>
            Send(new JsonObject { ["jsonrpc"] = "2.0", ["method"] = method, ["params"] = parameters });

        private void Send(JsonNode message)
        {
            var body = Encoding.UTF8.GetBytes(message.ToJsonString());
            var header = Encoding.ASCII.GetBytes($"Content-Length: {body.Length}\r\n\r\n");
            lock (input)
            {
                input.Write(header);
                input.Write(body);
                input.Flush();
            }
        }

        private async Task ReadMessages()
        {
            var output = process.StandardOutput.BaseStream;
            try
            {
                while (true)
                {
                    int length = await ReadHeader(output);
                    if (length < 0) return;
                    var body = new byte[length];
                    await output.ReadExactlyAsync(body);
                    Dispatch(JsonNode.Parse(body)!);
                }
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or EndOfStreamException)
            {
                // The server ended.
            }
            finally
            {
                foreach (var answer in pending.Values) answer.TrySetException(new IOException($"the language server ended.\n{Log}"));
            }
        }

        private static async Task<int> ReadHeader(Stream output)
        {
            var line = new StringBuilder();
            int length = -1;
            var one = new byte[1];
            while (true)
            {
                if (await output.ReadAsync(one) == 0) return -1;
                if (one[0] != '\n') { if (one[0] != '\r') line.Append((char)one[0]); continue; }
                if (line.Length == 0) return length;
                var text = line.ToString();
                if (text.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase)) length = int.Parse(text["Content-Length:".Length..].Trim());
                line.Clear();
            }
        }

        private void Dispatch(JsonNode message)
        {
            var method = message["method"]?.GetValue<string>();
            var id = message["id"];
            if (method is null && id is not null)
            {
                if (pending.TryRemove(id.GetValue<int>(), out var answer))
                {
                    if (message["error"] is { } error) answer.TrySetException(new InvalidOperationException($"server error: {error.ToJsonString()}"));
                    else answer.TrySetResult(message["result"]);
                }
                return;
            }
            if (method is "window/logMessage" or "window/showMessage")
            {
                lock (log) log.AppendLine("log: " + message["params"]?["message"]);
                return;
            }
            if (id is null) return; // other notifications
            // The server's own requests: the configuration turns analyzers on; everything else is acknowledged.
            JsonNode? result = null;
            if (method == "workspace/configuration")
            {
                var items = new JsonArray();
                foreach (var _ in message["params"]?["items"]?.AsArray() ?? new JsonArray()) items.Add(AnalyzersEnabled());
                result = items;
            }
            Send(new JsonObject { ["jsonrpc"] = "2.0", ["id"] = id.DeepClone(), ["result"] = result });
        }

        public static JsonObject AnalyzersEnabled() => new() { ["csharp"] = new JsonObject { ["analyzersEnabled"] = true }, ["analyzersEnabled"] = true };

        public void Dispose()
        {
            try
            {
                if (!process.HasExited) process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // Already gone.
            }
            process.Dispose();
        }
    }
}
