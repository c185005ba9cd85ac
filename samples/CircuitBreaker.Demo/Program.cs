using System.Runtime.InteropServices;

namespace CircuitBreaker.Demo;

/// <summary>
/// The demo's entry point: a live outage drill of CircuitBreaker.Http (see <see cref="DemoProgram"/> and
/// <c>--help</c>). Ctrl+C (or SIGTERM) ends it early, or ends the serving of <c>/metrics</c> after it with <c>--prometheus</c>.
/// </summary>
internal static class Program
{
    private static async Task<int> Main(string[] args)
    {
        using var ctrlC = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true; // let the drill stop and print its summary
            ctrlC.Cancel();
        };

        // What `docker stop`, systemd and `kill` send: without this, --prometheus would keep serving until SIGKILL.
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
        {
            context.Cancel = true; // stop as on Ctrl+C, not at once
            ctrlC.Cancel();
        });

        return await DemoProgram.RunAsync(args, Console.Out, ctrlC.Token);
    }
}
