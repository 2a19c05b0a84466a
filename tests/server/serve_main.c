/* `vkflow serve` with the test nodes, without the rest of the CLI. */
#include "cli/cli.h"

int main(int argc, char **argv)
{
    return vkf_cli_serve(argc, argv);
}
