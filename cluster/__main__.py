from cluster.cli import main

main(prog_name="managed")
