"""The topic measurement set: episodes made of unrelated subjects, with their true boundaries.

Each subject is a short spoken text of our own (100-150 words). An episode strings 3-6 of
them (or just one, for the single-subject cases) and is read at its own pace; ``transcript``
times the words the way a speaker does (longer words take longer, a breath after each
sentence), so the fast tier knows where every subject starts without running a model.
The real-speech tier (``tests/data/topics.opus``) is espeak-ng reading ``SPOKEN`` with a
different voice and speed per subject, transcribed by the bundled model once per session.
"""

from __future__ import annotations

SUBJECTS = {
    "bread": (
        "Good bread starts with a slow dough. Mix the flour and water and let the gluten rest before you add "
        "the salt. A sourdough starter needs feeding every day, and a lively starter doubles in about six hours. "
        "When you shape the loaf, keep the surface tight so the crust can rise in the oven. Bakers score the "
        "top with a razor so the steam escapes where they want it. A hot oven and a little steam give a shiny "
        "crust. Let the loaf cool for an hour before you cut it, or the crumb turns gummy. Rye flour ferments "
        "faster than wheat, so a rye dough needs less time on the bench."),
    "telescope": (
        "Choosing a first telescope is mostly about aperture. A wider mirror gathers more light, so faint "
        "galaxies and nebulae become visible. A refractor uses lenses, needs little care, and shows the Moon "
        "and Saturn crisply. A Dobsonian reflector gives the most aperture for the money, but the mirror needs "
        "collimation now and then. Magnification matters far less than beginners expect; the eyepiece sets it, "
        "and the atmosphere limits it. A steady mount is worth more than a fancy tripod. Take the telescope "
        "outside half an hour early so the optics cool down, and look for dark skies away from city lights."),
    "pressing": (
        "Pressing in football means winning the ball back high up the pitch. When the opponent's defender "
        "receives a pass, the nearest striker sprints to close him down, and the midfielders cut the passing "
        "lanes. The trigger matters: a bad touch, a back pass, or a player facing his own goal. If one player "
        "presses alone, the opponent simply passes around him, so the whole team must move together and the "
        "back line has to step up. Counter pressing is the same idea straight after losing the ball. Teams that "
        "press well force mistakes near the penalty area and score from short distances."),
    "mortgage": (
        "A mortgage is a loan secured on your house, repaid over twenty or thirty years. The interest rate can "
        "be fixed, so your monthly payment never changes, or variable, so it follows the central bank. Lenders "
        "look at your income, your debts and your deposit; a bigger deposit means a lower loan to value and a "
        "cheaper rate. Early payments are mostly interest, and only later do they pay down the principal. "
        "Overpaying a little each month can cut years off the term. Before you sign, compare the fees, the "
        "early repayment charges and the total cost over the whole term, not just the headline rate."),
    "bees": (
        "A honeybee colony is one queen, thousands of workers, and a few hundred drones in summer. The queen "
        "lays up to two thousand eggs a day. Workers clean cells, nurse larvae, build wax comb and guard the "
        "entrance before they become foragers. A forager tells her sisters where the flowers are with the waggle "
        "dance: the angle points to the nectar and the length gives the distance. Beekeepers inspect the hive "
        "every week in spring to spot swarm cells. Varroa mites are the biggest threat, so most beekeepers treat "
        "the colony after the honey harvest."),
    "marathon": (
        "Training for a marathon takes about four months. Most of your running should be easy, slow enough to "
        "hold a conversation, because that builds the aerobic base. Once a week, a long run grows from ten "
        "kilometres to over thirty. Tempo runs and intervals teach your legs to hold race pace. Increase your "
        "weekly mileage gradually, or shin splints and knee injuries follow. In the last three weeks you taper, "
        "running less so your muscles recover. On race day, start slower than you want to, drink at the aid "
        "stations, and eat gels before you hit the wall around kilometre thirty."),
    "volcano": (
        "A volcano forms where magma rises through the crust. At subduction zones one tectonic plate sinks "
        "under another, melts, and feeds explosive volcanoes like Mount Saint Helens. Over hot spots such as "
        "Hawaii, runny basalt lava flows out gently and builds wide shield volcanoes. Sticky magma full of gas "
        "explodes into ash and pumice, and pyroclastic flows race down the slopes faster than a car. "
        "Volcanologists watch for swarms of small earthquakes, swelling ground and sulphur dioxide in the "
        "air. Ash clouds can stop aircraft engines, so airports close when an eruption begins."),
    "coffee": (
        "Brewing good coffee starts with fresh beans ground just before you brew. The grind size controls "
        "extraction: too fine and the cup tastes bitter, too coarse and it tastes sour. For a pour over, use "
        "about sixty grams of coffee per litre of water, just off the boil. Bloom the grounds with a little "
        "water for thirty seconds so the gas escapes. An espresso machine pushes water through a tight puck at "
        "nine bars of pressure in about twenty five seconds. Light roasts keep the fruity acidity of the origin; "
        "dark roasts taste of chocolate and caramel."),
    "chess": (
        "A chess opening has three jobs: control the centre, develop your pieces, and castle your king to "
        "safety. Moving the same piece twice in the opening wastes time. The Italian game brings the bishop to "
        "an active square and aims at the weak pawn next to the king. Black often answers with the Sicilian "
        "defence, which fights for the centre from the side. Gambits give up a pawn for quick development and "
        "an attack. Memorising long lines helps less than understanding the plans behind them, and every "
        "grandmaster studies endgames to know which trades to make."),
    "electric": (
        "An electric car stores its energy in a lithium battery under the floor. Range depends on the battery's "
        "capacity in kilowatt hours, the weather, and your speed on the motorway. Cold winter days can cut the "
        "range by a fifth, because the battery and the cabin need heating. Charging at home overnight is cheap "
        "and slow; a rapid charger on the motorway can add two hundred kilometres in twenty minutes. "
        "Regenerative braking turns the motor into a generator and puts energy back into the battery. The "
        "electric motor has few moving parts, so servicing costs much less than for a petrol engine."),
    "houseplants": (
        "Most houseplants die from too much water, not too little. Push a finger into the soil, and water only "
        "when the top few centimetres are dry. Every pot needs a drainage hole, or the roots sit in water and "
        "rot. Light is the other half: a fern likes shade and humidity, while a cactus wants a sunny window "
        "sill. Yellow leaves usually mean overwatering, and brown crispy tips mean dry air. Feed your plants "
        "with a diluted fertiliser in spring and summer, when they grow, and repot them into a slightly bigger "
        "pot when the roots circle the bottom."),
    "sleep": (
        "Sleep comes in cycles of about ninety minutes. Each cycle moves from light sleep into deep slow wave "
        "sleep, which repairs the body, and then into dreaming sleep, which consolidates memory. Your body "
        "clock runs on a rhythm set by daylight, and the hormone melatonin rises in the evening darkness. "
        "Caffeine blocks the adenosine that makes you drowsy, and it lingers for six hours or more. Bright "
        "screens late at night delay melatonin. Adults need seven to nine hours, and a regular wake up time "
        "keeps the body clock steady, even at weekends."),
}

# (subjects in order, words per minute, espeak-ng voice) - 3 to 6 subjects, paces from slow to brisk.
EPISODES = [
    (["bread", "telescope", "pressing", "mortgage"], 160, "en-us"),
    (["bees", "coffee", "volcano"], 130, "en"),
    (["chess", "sleep", "electric", "houseplants", "marathon"], 175, "en-us+f3"),
    (["mortgage", "bees", "telescope", "sleep", "bread", "chess"], 185, "en+m3"),
    (["volcano", "marathon", "coffee", "pressing"], 120, "en-gb"),
    (["houseplants", "electric", "bread"], 145, "en-us+m2"),
    (["sleep", "pressing", "bees", "mortgage", "volcano"], 165, "en+f2"),
    (["coffee", "chess", "houseplants", "telescope"], 150, "en-us"),
    (["electric", "volcano", "sleep", "marathon", "chess", "bees"], 140, "en-gb+f4"),
]
SINGLE = [(["bees"], 150, "en-us"), (["mortgage"], 125, "en"), (["electric"], 170, "en-us+f3")]

# The held-out set: other texts, strung into other episodes, NEVER used to tune pipeline/enrichment/topics.py
# (its constants are tuned on SUBJECTS/EPISODES and on random episodes of SUBJECTS, bench/topics.py). Its
# figures are the honest ones; a change made to pass it would spoil it.
HELD_OUT_SUBJECTS = {
    "guitar": (
        "Learning the guitar starts with a few open chords. G, C and D cover hundreds of songs, so practise "
        "switching between them until the change happens in time. Press the strings just behind the fret, not on "
        "top of it, or the note buzzes. Your fingertips will hurt for the first two weeks until calluses form. "
        "Keep the guitar in tune every time you pick it up; a clip-on tuner costs very little. Strum with a "
        "loose wrist and count the rhythm out loud. Ten minutes a day beats two hours on a Sunday, because your "
        "fingers learn the shapes through repetition."),
    "vaccines": (
        "A vaccine teaches the immune system to recognise a germ before the real infection arrives. It carries "
        "a harmless piece of the virus or bacterium, often a surface protein, or instructions to make one. White "
        "blood cells meet that antigen, produce antibodies against it, and keep memory cells for years. When the "
        "real pathogen shows up, the body responds within hours instead of days. Some vaccines need a booster "
        "because immunity fades. A sore arm or a mild fever means the immune response is working. When enough "
        "people are immune, the disease cannot spread, which protects babies and patients who cannot be vaccinated."),
    "photography": (
        "Exposure in photography comes down to three settings. The aperture is the opening of the lens: a wide "
        "aperture lets in more light and blurs the background behind a portrait. The shutter speed decides how "
        "long the sensor sees the scene; a fast shutter freezes a running dog, a slow one turns a waterfall into "
        "silk. ISO amplifies the signal, but a high ISO adds grain and noise. Change one setting and you must "
        "balance it with another. Shoot in raw format so you can recover the highlights later, and watch the "
        "histogram rather than the screen on the back of the camera."),
    "compost": (
        "A compost heap turns kitchen scraps and garden waste into rich soil. Mix green material, such as "
        "vegetable peelings and grass cuttings, with brown material, such as dry leaves, straw and cardboard. "
        "Greens bring nitrogen, browns bring carbon, and microbes need both. Turn the heap every couple of weeks "
        "so air reaches the middle, and keep it as damp as a wrung out sponge. A healthy heap gets warm inside "
        "and smells earthy. Leave out meat, dairy and cooked food, which attract rats. After six months to a "
        "year the compost is dark and crumbly, ready to spread on your vegetable beds."),
    "sharks": (
        "Sharks have roamed the oceans for more than four hundred million years, longer than trees have existed. "
        "Their skeleton is cartilage rather than bone, which keeps them light and flexible. Rows of teeth move "
        "forward like a conveyor belt, and a shark may lose thousands in its lifetime. Special pores on the snout "
        "sense the weak electric fields of hidden prey. Many species must keep swimming so water flows over their "
        "gills. Despite the films, attacks on people are rare, while fishing kills tens of millions of sharks "
        "every year for their fins."),
    "cheese": (
        "Cheese begins when milk meets rennet, an enzyme that makes the protein clot into curds. The cheesemaker "
        "cuts the curd, warms it and drains away the whey. Small curd pieces lose more moisture and make a hard "
        "cheese like cheddar or parmesan; large soft pieces make brie. Salt slows the bacteria and draws out "
        "more whey. Then the wheels age in a cool cave, turned and brushed, for weeks or years. Blue cheese is "
        "pierced with needles so the mould can breathe, and washed rind cheeses are rubbed with brine, which "
        "gives them their strong smell."),
    "bicycle": (
        "Keeping a bicycle running needs only a few habits. Check the tyre pressure every week; the number is "
        "printed on the side of the tyre. Clean the chain, then add a drop of oil to each link and wipe off the "
        "excess, because dirt sticks to oil. Worn brake pads squeal and stop late, so replace them before the "
        "metal shows. If the gears skip, turn the barrel adjuster on the derailleur a quarter turn at a time. "
        "Carry a spare inner tube, tyre levers and a small pump, and a flat tyre costs you ten minutes by the "
        "roadside instead of a long walk home."),
    "pyramids": (
        "The great pyramid of Giza was built for the pharaoh Khufu about four and a half thousand years ago. It "
        "holds over two million limestone blocks, some weighing as much as a lorry. The workers were not slaves "
        "but paid labourers who lived in a town nearby and ate bread, beer and beef. They probably dragged the "
        "blocks on wooden sledges, wetting the sand in front so the sledges slid more easily. Ramps rose with "
        "the pyramid as it grew. The sides once shone with polished white casing stones, most of which were "
        "later taken to build Cairo."),
    "knitting": (
        "Knitting needs just two needles and a ball of yarn. You cast on a row of loops, then build fabric with "
        "two stitches: the knit stitch and the purl stitch. Knit every row and you get garter stitch, bumpy on "
        "both sides; alternate knit and purl rows for smooth stockinette. A gauge swatch tells you how many "
        "stitches make ten centimetres, so the sweater fits. Wool is warm and forgiving for beginners, while "
        "slippery cotton shows every uneven stitch. If you drop a stitch, a crochet hook can pick it back up "
        "the ladder it left."),
    "passwords": (
        "A strong password is long rather than clever. Four random words strung together beat a short jumble "
        "of symbols, because attackers guess billions of combinations a second. Never reuse a password: when "
        "one website is breached, criminals try the same email and password everywhere else. A password manager "
        "remembers a unique password for every account and fills it in for you. Turn on two factor "
        "authentication, so a stolen password alone cannot open the account. An authenticator app is safer than "
        "a text message, which can be intercepted by swapping your SIM card."),
    "tides": (
        "Tides rise and fall because the Moon's gravity pulls on the oceans. The water bulges toward the Moon "
        "and, on the far side of the Earth, away from it, so most coasts get two high tides a day, about twelve "
        "hours and twenty five minutes apart. When the Sun and the Moon line up at new and full moon, their pulls "
        "add up and give spring tides with the biggest range. At half moon they partly cancel into neap tides. "
        "The shape of the coastline matters too: the Bay of Fundy funnels the water into a range of sixteen "
        "metres, while the Mediterranean barely moves."),
    "tea": (
        "Green and black tea come from the same plant, Camellia sinensis; what differs is the processing. For "
        "green tea the leaves are heated soon after picking to stop oxidation, so they stay green and grassy. "
        "Black tea leaves are rolled and left to oxidise until they turn dark and malty. Oolong sits in between. "
        "Brew green tea with water around eighty degrees for two minutes, or it turns bitter; black tea takes "
        "boiling water and four minutes. Loose leaves need room to unfurl, so a roomy infuser gives a better cup "
        "than a cramped bag."),
}
# 3-6 subjects each, paces from slow to brisk (the voices say who would read them, as in EPISODES).
HELD_OUT_EPISODES = [
    (["guitar", "sharks", "compost", "passwords"], 150, "en-us"),
    (["tea", "pyramids", "bicycle"], 125, "en-gb"),
    (["vaccines", "knitting", "tides", "cheese", "guitar"], 170, "en-us+f3"),
    (["photography", "compost", "sharks", "tea", "passwords", "pyramids"], 180, "en+m3"),
    (["bicycle", "cheese", "vaccines", "tides"], 135, "en"),
    (["knitting", "photography", "guitar"], 160, "en-us+m2"),
    (["tides", "passwords", "bicycle", "sharks", "knitting"], 145, "en+f2"),
    (["cheese", "tea", "photography", "vaccines"], 190, "en-us"),
    (["pyramids", "guitar", "compost", "cheese", "bicycle", "tides"], 155, "en-gb+f4"),
    (["sharks", "vaccines", "knitting"], 115, "en-us+f3"),
]
HELD_OUT_SINGLE = [(["tides"], 140, "en-us"), (["compost"], 175, "en")]

# The real-speech episode: one voice and pace per subject (tests/data/topics.opus, tests/data/topics.json).
SPOKEN = [("bread", 165, "en-us"), ("telescope", 145, "en-gb"), ("pressing", 175, "en-us+f3"),
          ("mortgage", 150, "en+m3")]

# What a host says between subjects, naming neither (only the words of the handover tell where it is).
TRANSITIONS = ["Now let's turn to something completely different.", "Okay, moving on.",
               "Right, let's switch to another topic.", "Our next subject is one of my favourites."]

SENTENCE_BREATH = 0.35   # seconds of silence after a sentence, as espeak-ng leaves


def transcript(subjects: list[str], words_per_minute: float, texts: dict[str, str] | None = None,
               transitions: list[str] | None = None) -> tuple[dict, list[float]]:
    """A transcript of the subjects (keys of ``texts``, ``SUBJECTS`` by default) read in order at
    ``words_per_minute``, and when each subject starts; ``transitions``: a host's line said before
    each subject after the first (in turn), where that subject then starts."""
    texts = SUBJECTS if texts is None else texts
    mean_letters = 4.7
    t, segments, starts = 0.0, [], []
    for n, subject in enumerate(subjects):
        starts.append(round(t, 2))
        handover = [transitions[(n - 1) % len(transitions)]] if transitions and n else []
        for sentence in handover + _sentences(texts[subject]):
            words = []
            for token in sentence.split():
                length = 60.0 / words_per_minute * (0.45 + 0.55 * len(token.strip(".,;:?!")) / mean_letters)
                words.append({"word": " " + token, "start": round(t, 2), "end": round(t + 0.9 * length, 2),
                              "probability": 0.9})
                t += length
            segments.append({"start": words[0]["start"], "end": words[-1]["end"],
                             "text": " " + sentence, "words": words})
            t += SENTENCE_BREATH
    return ({"language": "en", "duration": round(t, 2), "engine": "synthetic", "model": "none",
             "segments": segments}, starts)


def _sentences(text: str) -> list[str]:
    out, current = [], []
    for token in text.split():
        current.append(token)
        if token[-1] in ".?!":
            out.append(" ".join(current))
            current = []
    if current:
        out.append(" ".join(current))
    return out


def speak(out_dir):
    """Regenerate tests/data/topics.{opus,json}: espeak-ng reads ``SPOKEN``, one voice and pace per subject.

    Run by hand (``.venv/bin/python tests/topic_episodes.py``, needs espeak-ng); the tests use the committed files.
    """
    import json
    import subprocess
    import tempfile
    from pathlib import Path

    import ffmpeg

    from pipeline.media import ffmpeg_exe, probe

    out_dir = Path(out_dir)
    starts, t = [], 0.0
    with tempfile.TemporaryDirectory() as tmp:
        parts = []
        for n, (subject, wpm, voice) in enumerate(SPOKEN):
            wav = Path(tmp) / f"{n}.wav"
            subprocess.run(["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(wav), SUBJECTS[subject]], check=True)
            starts.append(round(t, 2))
            t += probe(wav).duration
            parts.append(ffmpeg.input(str(wav)).audio.filter("aresample", 16000))
        joined = ffmpeg.concat(*parts, v=0, a=1)
        (ffmpeg.output(joined, str(out_dir / "topics.opus"), acodec="libopus", audio_bitrate="12k", ac=1)
         .run(cmd=ffmpeg_exe(), overwrite_output=True, quiet=True))
    (out_dir / "topics.json").write_text(json.dumps({"subjects": [s for s, _, _ in SPOKEN], "starts": starts},
                                                    indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    speak(Path(__file__).parent / "data")
