namespace CircuitBreaker.Demo;

/// <summary>
/// The demo's entry point: a live outage drill of CircuitBreaker.Http (see <see cref="DemoProgram"/> and
/// <c>--help</c>). Ctrl+C ends it early, or ends the serving of <c>/metrics</c> after it with <c>--prometheus</c>.
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

        return await DemoProgram.RunAsync(args, Console.Out, ctrlC.Token);
    }
}
