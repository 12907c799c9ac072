from bot.cli import main


def test_config_check_accepts_default_config(capsys):
    assert main(["config", "check"]) == 0
    assert "is valid" in capsys.readouterr().out
